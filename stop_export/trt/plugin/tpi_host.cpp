// Host reference of TemporalPromptInsert built from the kernel's own math (tpi_math.h) and the core's
// checks (tpi_core.h), with a C ABI so the Python tests can call it and compare with the PyTorch op.
// Not used at run time.
#include <algorithm>
#include <cstring>
#include <vector>

#include "tpi_core.h"

namespace
{

void copyMessage(std::string const& msg, char* err, int32_t errLen)
{
    if (err != nullptr && errLen > 0)
    {
        std::strncpy(err, msg.c_str(), static_cast<size_t>(errLen - 1));
        err[errLen - 1] = '\0';
    }
}

} // namespace

extern "C"
{

//! Output length S for (T, F, P).
int64_t tpi_sequence_length(int64_t frames, int64_t frameLen, int32_t promptsPerGap)
{
    return stop::tpi::sequenceLength(frames, frameLen, promptsPerGap);
}

//! Checks attributes and shapes; returns 0 when fine, else 1 with the reason in err.
int32_t tpi_check(int32_t promptsPerGap, int32_t numPatches, float tol, int64_t const* frameDims,
    int64_t const* gapDims, char* err, int32_t errLen)
{
    stop::tpi::Attributes const a{promptsPerGap, numPatches, tol};
    std::string msg = stop::tpi::checkAttributes(a);
    if (msg.empty())
    {
        stop::tpi::InputDims in{};
        std::copy(frameDims, frameDims + 4, in.frames);
        std::copy(gapDims, gapDims + 4, in.gaps);
        msg = stop::tpi::checkShapes(a, in);
    }
    copyMessage(msg, err, errLen);
    return msg.empty() ? 0 : 1;
}

//! The whole op on FP32 host arrays (shapes as in tpi_core.h); mask is one byte per element.
void tpi_host_forward(float const* frames, float const* gaps, int64_t b, int64_t t, int64_t f, int64_t d,
    int32_t promptsPerGap, int32_t numPatches, float tol, float* tokens, uint8_t* mask, float* variation,
    int32_t* count)
{
    using namespace stop::tpi;
    int64_t const p = promptsPerGap;
    int64_t const s = sequenceLength(t, f, p);
    for (int64_t v = 0; v < b; ++v)
    {
        float* var = variation + v * (t - 1);
        for (int64_t i = 0; i + 1 < t; ++i)
        {
            float sum = 0.0F;
            for (int64_t j = f - numPatches; j < f; ++j)
            {
                float const* x = frames + ((v * t + i) * f + j) * d;
                float const* y = frames + ((v * t + i + 1) * f + j) * d;
                float dot = 0.0F, xx = 0.0F, yy = 0.0F;
                for (int64_t k = 0; k < d; ++k)
                {
                    dot += x[k] * y[k];
                    xx += x[k] * x[k];
                    yy += y[k] * y[k];
                }
                sum += oneMinusCosine(dot, xx, yy);
            }
            var[i] = sum / static_cast<float>(numPatches);
        }
        float const lo = *std::min_element(var, var + t - 1);
        float const hi = *std::max_element(var, var + t - 1);
        for (int64_t i = 0; i + 1 < t; ++i)
        {
            count[v * (t - 1) + i] = promptCount(normalizedWeight(var[i], lo, hi, tol), promptsPerGap);
        }
        for (int64_t row = 0; row < s; ++row)
        {
            Slot const slot = locate(row, f, p);
            float* out = tokens + (v * s + row) * d;
            bool keep = true;
            float const* src = nullptr;
            if (slot.offset < f)
            {
                src = frames + ((v * t + slot.frame) * f + slot.offset) * d;
            }
            else
            {
                int64_t const slotIndex = slot.offset - f;
                keep = slotIndex < count[v * (t - 1) + slot.frame];
                src = gaps + ((v * (t - 1) + slot.frame) * p + slotIndex) * d;
            }
            for (int64_t k = 0; k < d; ++k)
            {
                out[k] = keep ? src[k] : 0.0F;
            }
            mask[v * s + row] = keep ? 1 : 0;
        }
    }
}

} // extern "C"
