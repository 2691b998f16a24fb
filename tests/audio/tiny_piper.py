"""A tiny Piper-shaped voice the tests make themselves, since the real one (63 MB) cannot be fetched here.

The ONNX graph has the names and shapes of a Piper export (inputs `input` int64 [1, n], `input_lengths`
int64 [1], `scales` float32 [3], optionally `sid` int64 [1]; output `output` float32 [1, 1, 1, samples])
and the config the keys of one (`audio.sample_rate`, `espeak.voice`, `phoneme_type`, `phoneme_id_map`,
`inference`, `num_speakers`). What it says is a tone whose length is `HOP` samples per phoneme id times
`length_scale`, like a VITS voice's (about one hop of audio frames per id), so a test can tell the
sample rate and the amount of text from the audio alone. `slow=N` adds N large matrix products that
depend on the input (so onnxruntime cannot fold them at load): a voice that speaks past its deadline.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HOP = 256
TONE_HZ = 220.0
# Symbols in order, one id each; what espeak-ng writes for Vietnamese, punctuation, and "_^$ ".
SYMBOLS = [
    "_", "^", "$", " ", "!", "'", "(", ")", ",", "-", ".", ":", ";", "?",
    *"abcdefhijklmnopqrstuvwxyzæçðøŋœɐɑɒɓɔɕɗɘəɛɜɟɠɡɣɤɪɲʃʈʊʋʌʒʔˈˌːɯɨ",
    *"0123456789", "\u0303", "\u032a", "\u0329", "\u032f", "\u0361", "ʰ", "ʲ", "ʷ",
]  # fmt: skip


def phoneme_id_map() -> dict[str, list[int]]:
    return {s: [i] for i, s in enumerate(SYMBOLS)}


def _model(*, slow: int = 0, speakers: int = 1) -> onnx.ModelProto:
    c = helper.make_tensor
    nodes = [
        helper.make_node("Shape", ["input"], ["shape"]),
        helper.make_node("Gather", ["shape", "one_i"], ["n"], axis=0),
        helper.make_node("Cast", ["n"], ["n_f"], to=TensorProto.FLOAT),
        helper.make_node("Gather", ["scales", "one_i"], ["length_scale"], axis=0),
        helper.make_node("Mul", ["n_f", "hop_f"], ["frames"]),
        helper.make_node("Mul", ["frames", "length_scale"], ["samples_f"]),
        helper.make_node("Floor", ["samples_f"], ["samples_floor"]),
        helper.make_node("Cast", ["samples_floor"], ["samples"], to=TensorProto.INT64),
        helper.make_node("Range", ["zero_i", "samples", "one_i"], ["t_i"]),
        helper.make_node("Cast", ["t_i"], ["t"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["t", "omega"], ["phase"]),
        helper.make_node("Sin", ["phase"], ["wave"]),
        helper.make_node("Mul", ["wave", "amplitude"], ["tone"]),
    ]
    last = "tone"
    if slow:
        # s = 1e-3 + 0 * sum(input): known only when the model runs
        nodes += [
            helper.make_node("Cast", ["input"], ["input_f"], to=TensorProto.FLOAT),
            helper.make_node("ReduceSum", ["input_f"], ["input_sum"], keepdims=0),
            helper.make_node("Mul", ["input_sum", "zero_f"], ["nothing"]),
            helper.make_node("Add", ["nothing", "small"], ["s"]),
            helper.make_node("Expand", ["s", "square"], ["m0"]),
        ]
        for k in range(slow):
            nodes.append(helper.make_node("MatMul", [f"m{k}", f"m{k}" if k == 0 else "m0"], [f"m{k + 1}"]))
        nodes += [
            helper.make_node("ReduceSum", [f"m{slow}"], ["busy"], keepdims=0),
            helper.make_node("Mul", ["busy", "zero_f"], ["busy0"]),
            helper.make_node("Add", ["tone", "busy0"], ["tone_slow"]),
        ]
        last = "tone_slow"
    nodes.append(helper.make_node("Reshape", [last, "out_shape"], ["output"]))
    sample_rate = 22050.0  # the tone's pitch only; the rate the audio is played at is the config's
    inits = [
        c("one_i", TensorProto.INT64, [], [1]),
        c("zero_i", TensorProto.INT64, [], [0]),
        c("hop_f", TensorProto.FLOAT, [], [float(HOP)]),
        c("omega", TensorProto.FLOAT, [], [2 * np.pi * TONE_HZ / sample_rate]),
        c("amplitude", TensorProto.FLOAT, [], [0.5]),
        c("zero_f", TensorProto.FLOAT, [], [0.0]),
        c("small", TensorProto.FLOAT, [], [1e-3]),
        numpy_helper.from_array(np.array([1024, 1024], dtype=np.int64), "square"),
        numpy_helper.from_array(np.array([1, 1, 1, -1], dtype=np.int64), "out_shape"),
    ]
    inputs = [
        helper.make_tensor_value_info("input", TensorProto.INT64, [1, "phonemes"]),
        helper.make_tensor_value_info("input_lengths", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("scales", TensorProto.FLOAT, [3]),
    ]
    if speakers > 1:
        inputs.append(helper.make_tensor_value_info("sid", TensorProto.INT64, [1]))
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 1, 1, "time"])]
    graph = helper.make_graph(nodes, "tiny_piper", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def config(*, sample_rate: int = 16000, length_scale: float = 1.0, speakers: int = 1) -> dict[str, object]:
    return {
        "audio": {"sample_rate": sample_rate, "quality": "tiny"},
        "espeak": {"voice": "vi"},
        "language": {"code": "vi_VN"},
        "inference": {"noise_scale": 0.667, "length_scale": length_scale, "noise_w": 0.8},
        "phoneme_type": "espeak",
        "phoneme_map": {},
        "phoneme_id_map": phoneme_id_map(),
        "num_symbols": len(SYMBOLS),
        "num_speakers": speakers,
        "speaker_id_map": {},
        "piper_version": "1.0.0",
    }


def make_voice(
    directory: Path, name: str = "vi_VN-tiny-x_low", *, slow: int = 0, speakers: int = 1, **config_opts: float
) -> Path:
    """Write `<name>.onnx` and `<name>.onnx.json` into `directory`; returns the model's path."""
    directory.mkdir(parents=True, exist_ok=True)
    model = directory / f"{name}.onnx"
    model.write_bytes(_model(slow=slow, speakers=speakers).SerializeToString())
    conf = config(speakers=speakers, **config_opts)  # type: ignore[arg-type]
    (directory / f"{name}.onnx.json").write_text(json.dumps(conf, ensure_ascii=False), encoding="utf-8")
    return model
