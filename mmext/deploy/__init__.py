"""ONNX deployment of mmext's (and any mmseg / dense mmdet) models.

* :mod:`.model_loading`: a model from a config + checkpoint, ready to export;
* :mod:`.wrappers`: tensor-in / tensors-out modules per model type (what is exported);
* :mod:`.export`: ``torch.onnx.export`` with the LaU translation and clear errors;
* :mod:`.verify`: run an exported file in onnxruntime and compare with PyTorch;
* :mod:`.spatialflow_outputs`: SpatialFlow's panoptic result from the exported
  network's outputs (the data-dependent part runs in Python);
* :mod:`.dense_outputs`: a detector's boxes from the exported outputs (dense and
  two-stage detectors).

``tools/deployment/export_onnx.py`` is the command line; see docs/deploy.md.
"""
from .dense_outputs import detector_predict_from_outputs, two_stage_predict_from_outputs
from .export import export_onnx
from .model_loading import load_model
from .spatialflow_outputs import spatialflow_predict_from_outputs
from .verify import compare_outputs, run_onnxruntime
from .wrappers import ExportSpec, wrap_for_export

__all__ = [
    'ExportSpec', 'compare_outputs', 'detector_predict_from_outputs', 'export_onnx',
    'load_model', 'run_onnxruntime', 'spatialflow_predict_from_outputs',
    'two_stage_predict_from_outputs', 'wrap_for_export'
]
