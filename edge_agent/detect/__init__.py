"""detect stage: models/models.yaml registry, ONNX Runtime backends, shared plumbing in common.py.

Entry points: `registry.load_detector(model, DetectorOptions)` and `registry.class_names(model)`.
Submodules are imported on use so `import edge_agent.detect` stays light.
"""
