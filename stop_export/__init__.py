"""STOP export (ONNX, TensorRT) and inference runtimes. Works without PyTorch for the runtime parts."""
