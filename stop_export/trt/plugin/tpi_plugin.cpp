#include "tpi_plugin.h"

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <cuda_fp16.h>

#include "tpi_kernel.h"

using namespace nvinfer1;

namespace stop
{
namespace tpi
{
namespace
{

ILogger* gLogger = nullptr; // set by TensorRT through setLoggerFinder

// Reports through TensorRT's logger without allocating: usable where an allocation has just failed.
void logError(char const* msg) noexcept
{
    if (gLogger != nullptr)
    {
        char text[512];
        std::snprintf(text, sizeof(text), "%s: %s", kPluginName, msg);
        gLogger->log(ILogger::Severity::kERROR, text);
    }
}

void logError(std::string const& msg) noexcept
{
    logError(msg.c_str());
}

// TensorRT's plugin convention: no exception leaves a noexcept method; it is reported and the method returns
// its documented failure value (-1, nullptr, false).
template <typename R, typename F>
R guarded(char const* where, R failure, F&& body) noexcept
{
    try
    {
        return body();
    }
    catch (std::exception const& e)
    {
        char text[384];
        std::snprintf(text, sizeof(text), "%s failed: %s", where, e.what());
        logError(text);
    }
    catch (...)
    {
        char text[384];
        std::snprintf(text, sizeof(text), "%s failed: unknown exception", where);
        logError(text);
    }
    return failure;
}

bool isFloat(DataType t)
{
    return t == DataType::kFLOAT || t == DataType::kHALF;
}

InputDims inputDims(Dims const& frames, Dims const& gaps)
{
    InputDims in{};
    for (int32_t i = 0; i < 4; ++i)
    {
        in.frames[i] = frames.d[i];
        in.gaps[i] = gaps.d[i];
    }
    return in;
}

} // namespace

// ------------------------------------------------------------------------------------------- plugin
TemporalPromptInsertPlugin::TemporalPromptInsertPlugin(Attributes const& attributes)
    : mAttributes(attributes)
{
    mFields = {PluginField(kPromptsPerGap, &mAttributes.promptsPerGap, PluginFieldType::kINT32, 1),
        PluginField(kNumPatches, &mAttributes.numPatches, PluginFieldType::kINT32, 1),
        PluginField(kVariationTol, &mAttributes.variationTol, PluginFieldType::kFLOAT32, 1)};
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
}

IPluginCapability* TemporalPromptInsertPlugin::getCapabilityInterface(PluginCapabilityType type) noexcept
{
    switch (type)
    {
    case PluginCapabilityType::kBUILD: return static_cast<IPluginV3OneBuild*>(this);
    case PluginCapabilityType::kRUNTIME: return static_cast<IPluginV3OneRuntime*>(this);
    case PluginCapabilityType::kCORE: return static_cast<IPluginV3OneCore*>(this);
    }
    return nullptr;
}

IPluginV3* TemporalPromptInsertPlugin::clone() noexcept
{
    return guarded("clone", static_cast<IPluginV3*>(nullptr), [&]() -> IPluginV3* {
        return new TemporalPromptInsertPlugin(mAttributes);
    });
}

char const* TemporalPromptInsertPlugin::getPluginName() const noexcept
{
    return kPluginName;
}

char const* TemporalPromptInsertPlugin::getPluginVersion() const noexcept
{
    return kPluginVersion;
}

char const* TemporalPromptInsertPlugin::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

int32_t TemporalPromptInsertPlugin::getNbOutputs() const noexcept
{
    return kNbOutputs;
}

int32_t TemporalPromptInsertPlugin::getOutputDataTypes(
    DataType* outputTypes, int32_t nbOutputs, DataType const* inputTypes, int32_t nbInputs) const noexcept
{
    if (nbInputs != kNbInputs || nbOutputs != kNbOutputs || !isFloat(inputTypes[0]) || inputTypes[1] != inputTypes[0])
    {
        logError("inputs must be two float32 or two float16 tensors");
        return -1;
    }
    outputTypes[0] = inputTypes[0];
    outputTypes[1] = DataType::kBOOL;
    outputTypes[2] = DataType::kFLOAT;
    outputTypes[3] = DataType::kINT32;
    return 0;
}

int32_t TemporalPromptInsertPlugin::getOutputShapes(DimsExprs const* inputs, int32_t nbInputs,
    DimsExprs const* /*shapeInputs*/, int32_t /*nbShapeInputs*/, DimsExprs* outputs, int32_t nbOutputs,
    IExprBuilder& exprBuilder) noexcept
{
    return guarded("getOutputShapes", int32_t{-1}, [&]() -> int32_t {
        if (nbInputs != kNbInputs || nbOutputs != kNbOutputs || inputs[0].nbDims != 4 || inputs[1].nbDims != 4)
        {
            logError("expects frame_tokens (B, T, F, D) and gap_prompts (B, T-1, P, D)");
            return -1;
        }
        IDimensionExpr const* b = inputs[0].d[0];
        IDimensionExpr const* t = inputs[0].d[1];
        IDimensionExpr const* f = inputs[0].d[2];
        IDimensionExpr const* d = inputs[0].d[3];
        IDimensionExpr const* gaps = exprBuilder.operation(DimensionOperation::kSUB, *t, *exprBuilder.constant(1));
        // S = T*F + (T-1)*P, as sequenceLength()
        IDimensionExpr const* s = exprBuilder.operation(DimensionOperation::kSUM,
            *exprBuilder.operation(DimensionOperation::kPROD, *t, *f),
            *exprBuilder.operation(DimensionOperation::kPROD, *gaps, *exprBuilder.constant(mAttributes.promptsPerGap)));
        outputs[0].nbDims = 3;
        outputs[0].d[0] = b;
        outputs[0].d[1] = s;
        outputs[0].d[2] = d;
        outputs[1].nbDims = 2;
        outputs[1].d[0] = b;
        outputs[1].d[1] = s;
        for (int32_t i = 2; i < 4; ++i)
        {
            outputs[i].nbDims = 2;
            outputs[i].d[0] = b;
            outputs[i].d[1] = gaps;
        }
        return 0;
    });
}

bool TemporalPromptInsertPlugin::supportsFormatCombination(
    int32_t pos, DynamicPluginTensorDesc const* inOut, int32_t nbInputs, int32_t nbOutputs) noexcept
{
    if (nbInputs != kNbInputs || nbOutputs != kNbOutputs || inOut[pos].desc.format != TensorFormat::kLINEAR)
    {
        return false;
    }
    DataType const type = inOut[pos].desc.type;
    switch (pos)
    {
    case 0: return isFloat(type);
    case 1:
    case 2: return type == inOut[0].desc.type; // gap_prompts and tokens share the input precision
    case 3: return type == DataType::kBOOL;
    case 4: return type == DataType::kFLOAT;
    case 5: return type == DataType::kINT32;
    default: return false;
    }
}

int32_t TemporalPromptInsertPlugin::configurePlugin(
    DynamicPluginTensorDesc const* in, int32_t nbInputs, DynamicPluginTensorDesc const* /*out*/, int32_t /*nbOutputs*/) noexcept
{
    return guarded("configurePlugin", int32_t{-1}, [&]() -> int32_t {
        if (nbInputs != kNbInputs)
        {
            return -1;
        }
        // shapes with every dimension known are checked now; the rest at onShapeChange
        Dims const& frames = in[0].desc.dims;
        Dims const& gaps = in[1].desc.dims;
        for (int32_t i = 0; i < 4; ++i)
        {
            if (frames.d[i] < 0 || gaps.d[i] < 0)
            {
                return 0;
            }
        }
        std::string const msg = checkShapes(mAttributes, inputDims(frames, gaps));
        if (!msg.empty())
        {
            logError(msg);
            return -1;
        }
        return 0;
    });
}

size_t TemporalPromptInsertPlugin::getWorkspaceSize(DynamicPluginTensorDesc const* /*inputs*/, int32_t /*nbInputs*/,
    DynamicPluginTensorDesc const* /*outputs*/, int32_t /*nbOutputs*/) const noexcept
{
    return 0;
}

int32_t TemporalPromptInsertPlugin::onShapeChange(
    PluginTensorDesc const* in, int32_t nbInputs, PluginTensorDesc const* /*out*/, int32_t /*nbOutputs*/) noexcept
{
    return guarded("onShapeChange", int32_t{-1}, [&]() -> int32_t {
        if (nbInputs != kNbInputs)
        {
            return -1;
        }
        std::string const msg = checkShapes(mAttributes, inputDims(in[0].dims, in[1].dims));
        if (!msg.empty())
        {
            logError(msg);
            return -1;
        }
        return 0;
    });
}

int32_t TemporalPromptInsertPlugin::enqueue(PluginTensorDesc const* inputDesc, PluginTensorDesc const* /*outputDesc*/,
    void const* const* inputs, void* const* outputs, void* /*workspace*/, cudaStream_t stream) noexcept
{
    return guarded("enqueue", int32_t{-1}, [&]() -> int32_t {
        Dims const& x = inputDesc[0].dims;
        Problem const pb{x.d[0], x.d[1], x.d[2], x.d[3], mAttributes.promptsPerGap, mAttributes.numPatches,
            mAttributes.variationTol};
        auto* mask = static_cast<bool*>(outputs[1]);
        auto* variation = static_cast<float*>(outputs[2]);
        auto* count = static_cast<int32_t*>(outputs[3]);
        cudaError_t err;
        if (inputDesc[0].type == DataType::kHALF)
        {
            err = launch<__half>(pb, static_cast<__half const*>(inputs[0]), static_cast<__half const*>(inputs[1]),
                static_cast<__half*>(outputs[0]), mask, variation, count, stream);
        }
        else
        {
            err = launch<float>(pb, static_cast<float const*>(inputs[0]), static_cast<float const*>(inputs[1]),
                static_cast<float*>(outputs[0]), mask, variation, count, stream);
        }
        if (err != cudaSuccess)
        {
            logError(std::string("kernel launch failed: ") + cudaGetErrorString(err));
            return -1;
        }
        return 0;
    });
}

IPluginV3* TemporalPromptInsertPlugin::attachToContext(IPluginResourceContext* /*context*/) noexcept
{
    return clone();
}

PluginFieldCollection const* TemporalPromptInsertPlugin::getFieldsToSerialize() noexcept
{
    return &mFieldCollection;
}

// ------------------------------------------------------------------------------------------ creator
TemporalPromptInsertCreator::TemporalPromptInsertCreator()
{
    mFields = {PluginField(kPromptsPerGap, nullptr, PluginFieldType::kINT32, 1),
        PluginField(kNumPatches, nullptr, PluginFieldType::kINT32, 1),
        PluginField(kVariationTol, nullptr, PluginFieldType::kFLOAT32, 1)};
    mFieldCollection.nbFields = static_cast<int32_t>(mFields.size());
    mFieldCollection.fields = mFields.data();
}

char const* TemporalPromptInsertCreator::getPluginName() const noexcept
{
    return kPluginName;
}

char const* TemporalPromptInsertCreator::getPluginVersion() const noexcept
{
    return kPluginVersion;
}

char const* TemporalPromptInsertCreator::getPluginNamespace() const noexcept
{
    return kPluginNamespace;
}

PluginFieldCollection const* TemporalPromptInsertCreator::getFieldNames() noexcept
{
    return &mFieldCollection;
}

IPluginV3* TemporalPromptInsertCreator::createPlugin(
    char const* /*name*/, PluginFieldCollection const* fc, TensorRTPhase /*phase*/) noexcept
{
    return guarded("createPlugin", static_cast<IPluginV3*>(nullptr), [&]() -> IPluginV3* {
        Attributes a;
        bool seen[3] = {false, false, false};
        for (int32_t i = 0; fc != nullptr && i < fc->nbFields; ++i)
        {
            PluginField const& field = fc->fields[i];
            if (std::strcmp(field.name, kPromptsPerGap) == 0 && field.type == PluginFieldType::kINT32)
            {
                a.promptsPerGap = *static_cast<int32_t const*>(field.data);
                seen[0] = true;
            }
            else if (std::strcmp(field.name, kNumPatches) == 0 && field.type == PluginFieldType::kINT32)
            {
                a.numPatches = *static_cast<int32_t const*>(field.data);
                seen[1] = true;
            }
            else if (std::strcmp(field.name, kVariationTol) == 0 && field.type == PluginFieldType::kFLOAT32)
            {
                a.variationTol = *static_cast<float const*>(field.data);
                seen[2] = true;
            }
        }
        if (!seen[0] || !seen[1] || !seen[2])
        {
            logError(std::string("needs the fields ") + kPromptsPerGap + " (int32), " + kNumPatches + " (int32) and "
                + kVariationTol + " (float32)");
            return nullptr;
        }
        std::string const msg = checkAttributes(a);
        if (!msg.empty())
        {
            logError(msg);
            return nullptr;
        }
        return new TemporalPromptInsertPlugin(a);
    });
}

} // namespace tpi
} // namespace stop

// ------------------------------------------------------------------------------- library entry points
extern "C" TENSORRTAPI void setLoggerFinder(ILoggerFinder* finder)
{
    stop::tpi::gLogger = finder != nullptr ? finder->findLogger() : nullptr;
}

extern "C" TENSORRTAPI IPluginCreatorInterface* const* getCreators(int32_t& nbCreators)
{
    static stop::tpi::TemporalPromptInsertCreator creator;
    static IPluginCreatorInterface* const creators[] = {&creator};
    nbCreators = 1;
    return creators;
}
