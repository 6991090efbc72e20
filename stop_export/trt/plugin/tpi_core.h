// The TensorRT-free core of the TemporalPromptInsert plugin: attribute names and checks, and the output
// shape formulas. The plugin class, the host reference and the tests all use these.
#pragma once

#include <cstdint>
#include <sstream>
#include <string>

#include "tpi_math.h"

namespace stop
{
namespace tpi
{

constexpr char const* kPluginName = "TemporalPromptInsert"; // = the ONNX op type
constexpr char const* kPluginVersion = "1";                 // = the ONNX op version
constexpr char const* kPluginNamespace = "stop";            // = the ONNX domain
constexpr int32_t kNbInputs = 2;                            // frame_tokens, gap_prompts
constexpr int32_t kNbOutputs = 4;                           // tokens, key_mask, gap_variation, gap_prompt_count

// Node attributes = creator fields = serialised fields, in this order.
constexpr char const* kPromptsPerGap = "prompts_per_gap";
constexpr char const* kNumPatches = "num_patches";
constexpr char const* kVariationTol = "variation_tol";

struct Attributes
{
    int32_t promptsPerGap{0};
    int32_t numPatches{0};
    float variationTol{1e-4F};
};

//! "" when the attributes are usable, else what is wrong.
inline std::string checkAttributes(Attributes const& a)
{
    std::ostringstream err;
    if (a.promptsPerGap < 0)
    {
        err << kPromptsPerGap << " must be >= 0, got " << a.promptsPerGap;
    }
    else if (a.numPatches < 1)
    {
        err << kNumPatches << " must be >= 1, got " << a.numPatches;
    }
    else if (!(a.variationTol >= 0.0F))
    {
        err << kVariationTol << " must be >= 0, got " << a.variationTol;
    }
    return err.str();
}

//! Input dimensions: frame_tokens (B, T, F, D), gap_prompts (B, T-1, P, D).
struct InputDims
{
    int64_t frames[4];
    int64_t gaps[4];
};

//! "" when the input shapes fit the attributes, else what is wrong.
inline std::string checkShapes(Attributes const& a, InputDims const& in)
{
    std::ostringstream err;
    int64_t const b = in.frames[0], t = in.frames[1], f = in.frames[2], d = in.frames[3];
    if (t < 2)
    {
        err << "frame_tokens needs T >= 2 frames, got " << t;
    }
    else if (a.numPatches > f)
    {
        err << kNumPatches << "=" << a.numPatches << " exceeds the frame group size F=" << f;
    }
    else if (in.gaps[0] != b || in.gaps[1] != t - 1 || in.gaps[2] != a.promptsPerGap || in.gaps[3] != d)
    {
        err << "gap_prompts must be (" << b << ", " << t - 1 << ", " << a.promptsPerGap << ", " << d << "), got ("
            << in.gaps[0] << ", " << in.gaps[1] << ", " << in.gaps[2] << ", " << in.gaps[3] << ")";
    }
    return err.str();
}

//! Output shapes: tokens (B, S, D), key_mask (B, S), gap_variation (B, T-1), gap_prompt_count (B, T-1).
struct OutputDims
{
    int64_t tokens[3];
    int64_t keyMask[2];
    int64_t variation[2];
    int64_t count[2];
};

inline OutputDims outputDims(Attributes const& a, InputDims const& in)
{
    int64_t const b = in.frames[0], t = in.frames[1], f = in.frames[2], d = in.frames[3];
    int64_t const s = sequenceLength(t, f, a.promptsPerGap);
    return OutputDims{{b, s, d}, {b, s}, {b, t - 1}, {b, t - 1}};
}

} // namespace tpi
} // namespace stop
