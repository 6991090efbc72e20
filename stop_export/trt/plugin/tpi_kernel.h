// CUDA launcher of TemporalPromptInsert (FP32 or FP16 I/O, FP32 math inside).
#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

namespace stop
{
namespace tpi
{

struct Problem
{
    int64_t batch;      // B
    int64_t frames;     // T
    int64_t frameLen;   // F
    int64_t width;      // D
    int32_t promptsPerGap; // P
    int32_t numPatches;    // N
    float variationTol;
};

//! T = float or __half. tokens (B, S, D) and mask (B, S) are written whole; variation and count (B, T-1).
template <typename T>
cudaError_t launch(Problem const& pb, T const* frames, T const* gaps, T* tokens, bool* mask, float* variation,
    int32_t* count, cudaStream_t stream);

} // namespace tpi
} // namespace stop
