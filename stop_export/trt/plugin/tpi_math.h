// Per-element math of TemporalPromptInsert (DECISIONS §3.1), shared by the CUDA kernels and the host
// reference: both compile this header, so CI checks the kernel's arithmetic on the CPU.
// Mirrors stop_train/model/insert_op.py (temporal_prompt_insert_reference); everything is FP32 inside.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define TPI_HD __host__ __device__ __forceinline__
#else
#define TPI_HD inline
#endif

namespace stop
{
namespace tpi
{

constexpr float kCosineEps = 1e-8F; // torch.nn.functional.cosine_similarity's eps

//! Tokens per video after insertion: T frame groups of F and T-1 gaps of P slots.
TPI_HD int64_t sequenceLength(int64_t frames, int64_t frameLen, int64_t promptsPerGap)
{
    return frames * frameLen + (frames - 1) * promptsPerGap;
}

//! Output row s -> frame t and offset k inside the chunk [frame group t (F rows), gap t (P rows)].
struct Slot
{
    int64_t frame;
    int64_t offset;
};

TPI_HD Slot locate(int64_t row, int64_t frameLen, int64_t promptsPerGap)
{
    int64_t const chunk = frameLen + promptsPerGap;
    return Slot{row / chunk, row % chunk};
}

//! 1 - cos(a, b) from a.b, |a|^2 and |b|^2, with the norms clamped to eps as torch does.
TPI_HD float oneMinusCosine(float dot, float squaredNormA, float squaredNormB)
{
    float const normA = fmaxf(sqrtf(squaredNormA), kCosineEps);
    float const normB = fmaxf(sqrtf(squaredNormB), kCosineEps);
    return 1.0F - dot / (normA * normB);
}

//! Per-video min-max of the variation; when every gap changes alike (range <= tol): all or nothing.
TPI_HD float normalizedWeight(float variation, float minimum, float maximum, float tol)
{
    float const range = maximum - minimum;
    if (range > tol)
    {
        return (variation - minimum) / range;
    }
    return variation > tol ? 1.0F : 0.0F;
}

//! n = ceil(P * W), clamped to [0, P].
TPI_HD int32_t promptCount(float weight, int32_t promptsPerGap)
{
    float const p = static_cast<float>(promptsPerGap);
    return static_cast<int32_t>(fminf(fmaxf(ceilf(weight * p), 0.0F), p));
}

} // namespace tpi
} // namespace stop
