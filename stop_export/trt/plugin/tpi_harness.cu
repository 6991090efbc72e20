// GPU harness: runs the CUDA kernels on host arrays (copied in and out) so the tests can compare them with
// the PyTorch reference on a machine with a GPU, and time them. Not part of the plugin library.
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "tpi_kernel.h"
#include "tpi_math.h"

namespace
{

template <typename T>
int32_t run(void const* frames, void const* gaps, int64_t b, int64_t t, int64_t f, int64_t d, int32_t p, int32_t n,
    float tol, void* tokens, uint8_t* mask, float* variation, int32_t* count, int32_t repeats, float* msPerRun)
{
    stop::tpi::Problem const pb{b, t, f, d, p, n, tol};
    int64_t const s = stop::tpi::sequenceLength(t, f, p);
    size_t const nFrames = b * t * f * d, nGaps = b * (t - 1) * p * d, nTokens = b * s * d;
    T *dFrames = nullptr, *dGaps = nullptr, *dTokens = nullptr;
    bool* dMask = nullptr;
    float* dVar = nullptr;
    int32_t* dCount = nullptr;
    cudaEvent_t start = nullptr, stop = nullptr;
    cudaError_t err = cudaSuccess;
    auto ok = [&](cudaError_t e) { err = (err == cudaSuccess) ? e : err; return err == cudaSuccess; };
    if (ok(cudaMalloc(&dFrames, nFrames * sizeof(T) + 1)) && ok(cudaMalloc(&dGaps, nGaps * sizeof(T) + 1))
        && ok(cudaMalloc(&dTokens, nTokens * sizeof(T) + 1)) && ok(cudaMalloc(&dMask, b * s + 1))
        && ok(cudaMalloc(&dVar, b * (t - 1) * sizeof(float) + 1)) && ok(cudaMalloc(&dCount, b * (t - 1) * sizeof(int32_t) + 1))
        && ok(cudaMemcpy(dFrames, frames, nFrames * sizeof(T), cudaMemcpyHostToDevice))
        && ok(cudaMemcpy(dGaps, gaps, nGaps * sizeof(T), cudaMemcpyHostToDevice)) && ok(cudaEventCreate(&start))
        && ok(cudaEventCreate(&stop)))
    {
        ok(stop::tpi::launch<T>(pb, dFrames, dGaps, dTokens, dMask, dVar, dCount, nullptr)); // warm-up
        ok(cudaEventRecord(start));
        for (int32_t i = 0; i < repeats && err == cudaSuccess; ++i)
        {
            ok(stop::tpi::launch<T>(pb, dFrames, dGaps, dTokens, dMask, dVar, dCount, nullptr));
        }
        ok(cudaEventRecord(stop));
        ok(cudaEventSynchronize(stop));
        float ms = 0.0F;
        ok(cudaEventElapsedTime(&ms, start, stop));
        *msPerRun = repeats > 0 ? ms / static_cast<float>(repeats) : 0.0F;
        ok(cudaMemcpy(tokens, dTokens, nTokens * sizeof(T), cudaMemcpyDeviceToHost));
        ok(cudaMemcpy(mask, dMask, b * s, cudaMemcpyDeviceToHost));
        ok(cudaMemcpy(variation, dVar, b * (t - 1) * sizeof(float), cudaMemcpyDeviceToHost));
        ok(cudaMemcpy(count, dCount, b * (t - 1) * sizeof(int32_t), cudaMemcpyDeviceToHost));
    }
    cudaFree(dFrames);
    cudaFree(dGaps);
    cudaFree(dTokens);
    cudaFree(dMask);
    cudaFree(dVar);
    cudaFree(dCount);
    if (start != nullptr)
    {
        cudaEventDestroy(start);
    }
    if (stop != nullptr)
    {
        cudaEventDestroy(stop);
    }
    return static_cast<int32_t>(err);
}

} // namespace

extern "C"
{

//! half = 0: float32 I/O, 1: float16 I/O (raw 16-bit values). Returns a cudaError_t (0 = success).
int32_t tpi_cuda_forward(int32_t half, void const* frames, void const* gaps, int64_t b, int64_t t, int64_t f,
    int64_t d, int32_t p, int32_t n, float tol, void* tokens, uint8_t* mask, float* variation, int32_t* count,
    int32_t repeats, float* msPerRun)
{
    if (half != 0)
    {
        return run<__half>(frames, gaps, b, t, f, d, p, n, tol, tokens, mask, variation, count, repeats, msPerRun);
    }
    return run<float>(frames, gaps, b, t, f, d, p, n, tol, tokens, mask, variation, count, repeats, msPerRun);
}

} // extern "C"
