"""Convert a CTranslate2 Whisper ``model.bin`` into an openai-whisper ``.pt`` checkpoint.

No openai-whisper checkpoint is published on the package registries we can reach, but
CTranslate2 models are, and their ``model.bin`` is a documented flat format (written by
``ctranslate2/specs/model_spec.py::ModelSpec._serialize``, binary version 6)::

    u32 version, str spec_name, u32 revision, u32 n_variables,
    n_variables x (str name, u8 rank, rank x u32 dim, u8 dtype, u32 n_bytes, bytes),
    u32 n_aliases, n_aliases x (str alias, str target)

with ``str`` = u16 length (including a trailing NUL) + UTF-8 + NUL, all little-endian.

The converter that produced the file fused whisper's separate projections: self-attention
q/k/v into one ``linear_0`` (rows q, k, v) and cross-attention k/v into ``linear_1``
(rows k, v). Whisper's key projections have no bias; CTranslate2 stores zeros there.
Queries are not pre-scaled (HF's q_proj scaling happens at run time), so the weights
copy across unchanged.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from speech.errors import ModelInstallError

# Order of the DataType enum in ctranslate2/types.h.
_DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")


@dataclass(frozen=True, slots=True)
class Ct2Model:
    spec: str
    revision: int
    variables: dict[str, npt.NDArray[np.generic]]
    aliases: dict[str, str]


@dataclass(frozen=True, slots=True)
class WhisperDims:
    """openai-whisper's ``ModelDimensions``, field for field."""

    n_mels: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_vocab: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


def read_ct2(path: str) -> Ct2Model:
    """Read every variable of a CTranslate2 ``model.bin`` into numpy arrays."""
    with open(path, "rb") as fh:
        try:
            return _read_ct2(fh)
        except (struct.error, ValueError, UnicodeDecodeError) as exc:
            raise ModelInstallError(f"{path} is not a readable CTranslate2 model: {exc}") from exc


def _read_ct2(fh: BinaryIO) -> Ct2Model:
    def unpack(fmt: str) -> int:
        size = struct.calcsize(fmt)
        (value,) = struct.unpack("<" + fmt, fh.read(size))
        return int(value)

    def string() -> str:
        raw = fh.read(unpack("H"))
        return raw[:-1].decode("utf-8")

    version = unpack("I")
    if version < 5:
        raise ValueError(f"binary version {version} is older than this reader knows")
    spec = string()
    revision = unpack("I")
    variables: dict[str, npt.NDArray[np.generic]] = {}
    for _ in range(unpack("I")):
        name = string()
        shape = tuple(unpack("I") for _ in range(unpack("B")))
        dtype = _DTYPES[unpack("B")]
        n_bytes = unpack("I")
        raw = fh.read(n_bytes)
        if len(raw) != n_bytes:
            raise ValueError(f"variable {name} is truncated")
        if dtype == "bfloat16":
            # numpy has no bfloat16: widen to float32 by shifting into the high half.
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            array: npt.NDArray[np.generic] = bits.view(np.float32)
        else:
            array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
        variables[name] = array.reshape(shape)
    aliases = {string(): string() for _ in range(unpack("I"))}
    return Ct2Model(spec=spec, revision=revision, variables=variables, aliases=aliases)


def _weight(model: Ct2Model, name: str) -> npt.NDArray[np.float32]:
    name = model.aliases.get(name, name)
    array = model.variables[name]
    scale_name = name.rsplit("/", 1)[0] + "/weight_scale"
    if array.dtype == np.int8 and name.endswith("/weight") and scale_name in model.variables:
        # An int8-quantised model: rows were multiplied by their scale before rounding.
        scale = model.variables[scale_name].astype(np.float32)
        return (array.astype(np.float32) / scale.reshape(-1, *([1] * (array.ndim - 1)))).astype(np.float32)
    return array.astype(np.float32)


def _count_layers(model: Ct2Model, stack: str) -> int:
    pattern = re.compile(rf"^{stack}/layer_(\d+)/")
    found = {int(m.group(1)) for name in model.variables if (m := pattern.match(name))}
    return max(found) + 1 if found else 0


def whisper_dims(model: Ct2Model) -> WhisperDims:
    """Model dimensions read off the variable shapes."""
    v = model.variables
    conv1 = v["encoder/conv1/weight"]
    enc_pos = v["encoder/position_encodings/encodings"]
    dec_pos = v["decoder/position_encodings/encodings"]
    return WhisperDims(
        n_mels=int(conv1.shape[1]),
        n_audio_ctx=int(enc_pos.shape[0]),
        n_audio_state=int(enc_pos.shape[1]),
        n_audio_head=int(v["encoder/num_heads"]),
        n_audio_layer=_count_layers(model, "encoder"),
        n_vocab=int(v["decoder/embeddings/weight"].shape[0]),
        n_text_ctx=int(dec_pos.shape[0]),
        n_text_state=int(dec_pos.shape[1]),
        n_text_head=int(v["decoder/num_heads"]),
        n_text_layer=_count_layers(model, "decoder"),
    )


def whisper_state_dict(model: Ct2Model) -> tuple[WhisperDims, dict[str, npt.NDArray[np.float32]]]:
    """Map CTranslate2 variable names and fused projections onto openai-whisper's modules."""
    if model.spec != "WhisperSpec":
        raise ModelInstallError(f"expected a WhisperSpec model, got {model.spec}")
    dims = whisper_dims(model)
    out: dict[str, npt.NDArray[np.float32]] = {}

    def linear(dst: str, src: str, rows: slice = slice(None), bias: bool = True) -> None:
        out[f"{dst}.weight"] = _weight(model, f"{src}/weight")[rows]
        if bias:
            out[f"{dst}.bias"] = _weight(model, f"{src}/bias")[rows]

    def norm(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = _weight(model, f"{src}/gamma")
        out[f"{dst}.bias"] = _weight(model, f"{src}/beta")

    def fused_attention(dst: str, src: str, d: int) -> None:
        linear(f"{dst}.query", f"{src}/linear_0", slice(0, d))
        linear(f"{dst}.key", f"{src}/linear_0", slice(d, 2 * d), bias=False)
        linear(f"{dst}.value", f"{src}/linear_0", slice(2 * d, 3 * d))
        linear(f"{dst}.out", f"{src}/linear_1")

    def mlp(dst: str, src: str) -> None:
        linear(f"{dst}.mlp.0", f"{src}/ffn/linear_0")
        linear(f"{dst}.mlp.2", f"{src}/ffn/linear_1")
        norm(f"{dst}.mlp_ln", f"{src}/ffn/layer_norm")

    d_audio, d_text = dims.n_audio_state, dims.n_text_state
    linear("encoder.conv1", "encoder/conv1")
    linear("encoder.conv2", "encoder/conv2")
    out["encoder.positional_embedding"] = _weight(model, "encoder/position_encodings/encodings")
    for i in range(dims.n_audio_layer):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        fused_attention(f"{dst}.attn", f"{src}/self_attention", d_audio)
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        mlp(dst, src)
    norm("encoder.ln_post", "encoder/layer_norm")

    out["decoder.token_embedding.weight"] = _weight(model, "decoder/embeddings/weight")
    out["decoder.positional_embedding"] = _weight(model, "decoder/position_encodings/encodings")
    for i in range(dims.n_text_layer):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        fused_attention(f"{dst}.attn", f"{src}/self_attention", d_text)
        norm(f"{dst}.attn_ln", f"{src}/self_attention/layer_norm")
        cross = f"{src}/attention"
        linear(f"{dst}.cross_attn.query", f"{cross}/linear_0")
        linear(f"{dst}.cross_attn.key", f"{cross}/linear_1", slice(0, d_text), bias=False)
        linear(f"{dst}.cross_attn.value", f"{cross}/linear_1", slice(d_text, 2 * d_text))
        linear(f"{dst}.cross_attn.out", f"{cross}/linear_2")
        norm(f"{dst}.cross_attn_ln", f"{cross}/layer_norm")
        mlp(dst, src)
    norm("decoder.ln", "decoder/layer_norm")
    return dims, out


def convert(model_bin: str, output: str, *, dtype: str = "float16") -> WhisperDims:
    """Write an openai-whisper checkpoint for the CTranslate2 model at ``model_bin``.

    The file is written next to ``output`` and renamed into place, so a crash never
    leaves a half-written checkpoint that looks installed. ``float16`` halves the file
    and loses nothing for models that were stored in float16 (all published ones).
    """
    import torch

    dims, arrays = whisper_state_dict(read_ct2(model_bin))
    torch_dtype = {"float16": torch.float16, "float32": torch.float32}[dtype]
    state = {name: torch.from_numpy(np.ascontiguousarray(a)).to(torch_dtype) for name, a in arrays.items()}
    checkpoint: Mapping[str, object] = {"dims": asdict(dims), "model_state_dict": state}
    folder = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix=".openai-whisper-", suffix=".pt.tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(checkpoint), fh)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return dims
