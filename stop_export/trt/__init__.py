"""TensorRT: the TemporalPromptInsert plugin (plugin/), its build, the engine builder and runtime."""
