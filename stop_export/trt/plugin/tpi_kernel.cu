// CUDA kernels of TemporalPromptInsert. The arithmetic comes from tpi_math.h (also compiled for the host
// and tested there against the PyTorch reference); this file only organises it on the GPU.
#include <cuda_fp16.h>

#include "tpi_kernel.h"
#include "tpi_math.h"

namespace stop
{
namespace tpi
{
namespace
{

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ float toFloat(float x)
{
    return x;
}
__device__ __forceinline__ float toFloat(__half x)
{
    return __half2float(x);
}

__device__ __forceinline__ float warpSum(float x)
{
    for (int offset = 16; offset > 0; offset /= 2)
    {
        x += __shfl_down_sync(0xffffffffU, x, offset);
    }
    return x;
}

//! One block per (gap i, video b): variation = mean over the N patches of 1 - cos(frame i, frame i+1).
//! Each warp takes patches j = warp, warp + kWarps, ...; partial sums are added in a fixed order.
template <typename T>
__global__ void variationKernel(Problem pb, T const* __restrict__ frames, float* __restrict__ variation)
{
    int64_t const gap = blockIdx.x, video = blockIdx.y;
    int const lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    __shared__ float partial[kWarps];
    float acc = 0.0F;
    for (int64_t j = pb.frameLen - pb.numPatches + warp; j < pb.frameLen; j += kWarps)
    {
        T const* x = frames + ((video * pb.frames + gap) * pb.frameLen + j) * pb.width;
        T const* y = x + pb.frameLen * pb.width; // the same patch in the next frame
        float dot = 0.0F, xx = 0.0F, yy = 0.0F;
        for (int64_t k = lane; k < pb.width; k += 32)
        {
            float const a = toFloat(x[k]), b = toFloat(y[k]);
            dot += a * b;
            xx += a * a;
            yy += b * b;
        }
        dot = warpSum(dot);
        xx = warpSum(xx);
        yy = warpSum(yy);
        if (lane == 0)
        {
            acc += oneMinusCosine(dot, xx, yy);
        }
    }
    if (lane == 0)
    {
        partial[warp] = acc;
    }
    __syncthreads();
    if (threadIdx.x == 0)
    {
        float sum = 0.0F;
        for (int w = 0; w < kWarps; ++w)
        {
            sum += partial[w];
        }
        variation[video * (pb.frames - 1) + gap] = sum / static_cast<float>(pb.numPatches);
    }
}

//! One thread per video: per-video min-max -> weights -> counts (T-1 is small).
__global__ void countKernel(Problem pb, float const* __restrict__ variation, int32_t* __restrict__ count)
{
    int64_t const video = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
    if (video >= pb.batch)
    {
        return;
    }
    int64_t const gaps = pb.frames - 1;
    float const* v = variation + video * gaps;
    float lo = v[0], hi = v[0];
    for (int64_t i = 1; i < gaps; ++i)
    {
        lo = fminf(lo, v[i]);
        hi = fmaxf(hi, v[i]);
    }
    for (int64_t i = 0; i < gaps; ++i)
    {
        count[video * gaps + i] = promptCount(normalizedWeight(v[i], lo, hi, pb.variationTol), pb.promptsPerGap);
    }
}

//! One block per (output row, video): copy the frame token or the gap slot (zero when inactive), and the mask.
template <typename T>
__global__ void insertKernel(Problem pb, T const* __restrict__ frames, T const* __restrict__ gaps,
    int32_t const* __restrict__ count, T* __restrict__ tokens, bool* __restrict__ mask)
{
    int64_t const row = blockIdx.x, video = blockIdx.y;
    int64_t const seq = sequenceLength(pb.frames, pb.frameLen, pb.promptsPerGap);
    Slot const slot = locate(row, pb.frameLen, pb.promptsPerGap);
    T const* src;
    bool keep = true;
    if (slot.offset < pb.frameLen)
    {
        src = frames + ((video * pb.frames + slot.frame) * pb.frameLen + slot.offset) * pb.width;
    }
    else
    {
        int64_t const p = slot.offset - pb.frameLen;
        keep = p < count[video * (pb.frames - 1) + slot.frame];
        src = gaps + ((video * (pb.frames - 1) + slot.frame) * pb.promptsPerGap + p) * pb.width;
    }
    T* out = tokens + (video * seq + row) * pb.width;
    T const zero = static_cast<T>(0.0F);
    for (int64_t k = threadIdx.x; k < pb.width; k += blockDim.x)
    {
        out[k] = keep ? src[k] : zero;
    }
    if (threadIdx.x == 0)
    {
        mask[video * seq + row] = keep;
    }
}

} // namespace

template <typename T>
cudaError_t launch(Problem const& pb, T const* frames, T const* gaps, T* tokens, bool* mask, float* variation,
    int32_t* count, cudaStream_t stream)
{
    if (pb.batch == 0)
    {
        return cudaSuccess;
    }
    int64_t const seq = sequenceLength(pb.frames, pb.frameLen, pb.promptsPerGap);
    variationKernel<T><<<dim3(static_cast<unsigned>(pb.frames - 1), static_cast<unsigned>(pb.batch)), kThreads, 0,
        stream>>>(pb, frames, variation);
    int const perBlock = 128;
    countKernel<<<static_cast<unsigned>((pb.batch + perBlock - 1) / perBlock), perBlock, 0, stream>>>(
        pb, variation, count);
    int const threads = pb.width >= 256 ? 256 : 128;
    insertKernel<T><<<dim3(static_cast<unsigned>(seq), static_cast<unsigned>(pb.batch)), threads, 0, stream>>>(
        pb, frames, gaps, count, tokens, mask);
    return cudaGetLastError();
}

template cudaError_t launch<float>(
    Problem const&, float const*, float const*, float*, bool*, float*, int32_t*, cudaStream_t);
template cudaError_t launch<__half>(
    Problem const&, __half const*, __half const*, __half*, bool*, float*, int32_t*, cudaStream_t);

} // namespace tpi
} // namespace stop
