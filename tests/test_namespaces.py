"""``import rnnkit`` alone gives the namespaces (models, training, generation, interop,
ONNX export) and stays numpy-only: no optional package is imported with it."""

import subprocess
import sys

import rnnkit


def test_import_rnnkit_gives_the_namespaces():
    assert rnnkit.models.LanguageModel and rnnkit.models.load_model
    assert rnnkit.train.Trainer and rnnkit.train.TrainConfig
    assert rnnkit.generate.beam_search and rnnkit.generate.sample_sequence
    assert rnnkit.interop.to_torch and rnnkit.interop.from_torch
    assert rnnkit.onnx.export
    assert rnnkit.optim.Adam and rnnkit.data.Vocab and rnnkit.layers.Dense
    assert rnnkit.course.rnn_forward
    assert rnnkit.attention.Attention and rnnkit.attention.plot_attention
    assert rnnkit.inspect.gradient_flow and rnnkit.viz.report and rnnkit.viz.write_html


def test_import_rnnkit_imports_no_optional_package():
    code = ("import sys, rnnkit; rnnkit.models, rnnkit.onnx, rnnkit.interop, rnnkit.viz; "
            "print(' '.join(m for m in ('onnx', 'onnxruntime', 'torch', 'tqdm', "
            "'matplotlib', 'threadpoolctl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == ""
