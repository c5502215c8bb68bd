"""Convert Resemblyzer's speaker encoder (PyPI ``Resemblyzer==0.1.4``, Apache-2.0) into the numpy weights
qa-audio ships (``qa_audio/signal/data/voice_encoder.npz``), without torch.

The wheel's ``resemblyzer/pretrained.pt`` is a legacy (pre-zip) torch pickle of a GE2E speaker encoder
(3-layer LSTM, 256 hidden, 40 mel bands at 16 kHz, a 256-d linear projection). This reads it with a
restricted unpickler (only tensors, storages and OrderedDict are allowed: nothing else in the file can run)
and stores the LSTM and projection weights as float16 (2.6 MB).

    pip download --no-deps Resemblyzer==0.1.4 -d /tmp/rz
    python scripts/convert_voice_encoder.py /tmp/rz/Resemblyzer-0.1.4-py3-none-any.whl

Run once; the output is committed. Never a runtime or CI need.
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import io
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "qa_audio" / "signal" / "data" / "voice_encoder.npz"
MEMBER = "resemblyzer/pretrained.pt"
_DTYPES = {"FloatStorage": np.float32, "HalfStorage": np.float16, "DoubleStorage": np.float64,
           "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class _Storage:
    def __init__(self, dtype):
        self.dtype, self.data = dtype, None


class _Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        return np.lib.stride_tricks.as_strided(data[self.offset:], shape=self.size,
                                               strides=tuple(s * data.itemsize for s in self.stride)).copy()


def _rebuild(storage, offset, size, stride, *_rest):
    return _Tensor(storage, offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild
        if module == "torch" and name in _DTYPES:
            return name
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refusing {module}.{name}")

    def persistent_load(self, pid):
        _typename, dtype, key, _location, _size, _view = pid
        return self.storages.setdefault(key, _Storage(_DTYPES[dtype]))


def load_legacy(f) -> dict:
    for _ in range(3):                    # magic number, protocol version, system info
        pickle.load(f)
    unpickler = _Unpickler(f)
    obj = unpickler.load()
    for key in pickle.load(f):
        storage = unpickler.storages[key]
        (count,) = struct.unpack("<q", f.read(8))
        storage.data = np.frombuffer(f.read(count * np.dtype(storage.dtype).itemsize), dtype=storage.dtype)
    return obj


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("wheel", type=Path, help="Resemblyzer-0.1.4-py3-none-any.whl")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with zipfile.ZipFile(args.wheel) as z:
        raw = z.read(MEMBER)
    state = load_legacy(io.BytesIO(raw))["model_state"]
    weights = {k: v.array().astype(np.float16) for k, v in state.items() if k.startswith(("lstm.", "linear."))}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **weights)
    print(f"{args.out}: {len(weights)} arrays from {MEMBER} (sha256 {hashlib.sha256(raw).hexdigest()[:16]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
