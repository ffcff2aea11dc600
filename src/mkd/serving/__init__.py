"""Serving a trained model folder: one ONNX graph for all its tasks (export.py, onnx_graph.py, the checks
both share in checks.py), serving without PyTorch (runtime.py), predictions (predict.py) and the CPU
speed of every model (bench.py). Nothing here trains; stages and the CLI call it."""
