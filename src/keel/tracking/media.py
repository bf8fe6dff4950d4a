"""Python objects as run artifacts: dicts, text, tables, figures and images turned into file bytes.

Each encoder checks the artifact name and its suffix first, then the object, then encodes it; nothing is
stored here (``Client.log_dict`` and friends store the bytes, content-addressed like ``log_artifact``).
The libraries a kind needs load on first use: pandas and pyarrow for tables (``keel[data]``), matplotlib,
plotly or Pillow for figures and PIL images (``keel[plots]``). A numpy array becomes a PNG without Pillow.
"""

from __future__ import annotations

import importlib
import io
import json
import struct
import sys
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from keel.core import validation as v
from keel.core.errors import InvalidArgument, MissingExtra

JSON_TYPE = "application/json"
PARQUET_TYPE = "application/vnd.apache.parquet"


def _suffix(name: Any, allowed: Sequence[str]) -> str:
    """The checked name's suffix, lower-cased, if it is one of ``allowed``."""
    v.check_artifact_path(name)
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
    if suffix not in allowed:
        raise InvalidArgument.for_field("name", name, "a file name ending in " + ", ".join(allowed))
    return suffix


def encode_dict(obj: Any, name: str) -> tuple[bytes, str]:
    """A mapping as JSON (``.json``) or YAML (``.yaml``/``.yml``, needs PyYAML)."""
    suffix = _suffix(name, (".json", ".yaml", ".yml"))
    if not isinstance(obj, Mapping):
        raise InvalidArgument.for_field("dictionary", obj, "a mapping (dict)")
    if suffix == ".json":
        try:
            text = json.dumps(obj, indent=2, allow_nan=True, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidArgument.for_field("dictionary", obj, f"JSON-serializable values ({exc})") from None
        return text.encode(), JSON_TYPE
    try:
        import yaml
    except ImportError:
        raise MissingExtra("pyyaml", "data") from None
    try:
        text = yaml.safe_dump(dict(obj), sort_keys=False, allow_unicode=True)
    except yaml.YAMLError as exc:
        raise InvalidArgument.for_field("dictionary", obj, f"YAML-serializable values ({exc})") from None
    return text.encode(), "application/yaml"


def encode_text(text: Any, name: str) -> bytes:
    v.check_artifact_path(name)
    if not isinstance(text, str):
        raise InvalidArgument.for_field("text", text, "a str")
    return text.encode()


def encode_table(frame: Any, name: str) -> tuple[bytes, str]:
    """A pandas DataFrame (or a pyarrow Table) as Parquet."""
    _suffix(name, (".parquet",))
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise MissingExtra("pyarrow", "data") from None
    if not isinstance(frame, pa.Table):
        pd = sys.modules.get("pandas")  # a DataFrame means pandas is loaded already: no import for other types
        if pd is None or not isinstance(frame, pd.DataFrame):
            raise InvalidArgument.for_field("frame", frame, "a pandas DataFrame or a pyarrow Table")
        try:
            frame = pa.Table.from_pandas(frame)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise InvalidArgument.for_field("frame", type(frame).__name__, f"columns Parquet can store ({exc})") from None
    buf = io.BytesIO()
    pq.write_table(frame, buf)
    return buf.getvalue(), PARQUET_TYPE


def _is_instance(obj: Any, module: str, cls: str) -> bool:
    """``isinstance(obj, module.cls)`` without importing ``module``: an instance means it is loaded."""
    mod = sys.modules.get(module)
    klass = getattr(mod, cls, None) if mod is not None else None
    return isinstance(klass, type) and isinstance(obj, klass)


def encode_figure(figure: Any, name: str) -> tuple[bytes, str]:
    """A matplotlib Figure as PNG or SVG; a plotly Figure as one HTML file that works offline (plotly.js inlined)."""
    suffix = _suffix(name, (".png", ".svg", ".html"))
    if suffix == ".html":
        try:
            go = importlib.import_module("plotly.graph_objects")  # untyped: no stubs to require
        except ImportError:
            raise MissingExtra("plotly", "plots") from None
        if not isinstance(figure, go.Figure):
            raise InvalidArgument.for_field("figure", figure, "a plotly Figure for an .html name")
        # plotly.js inlined, no CDN: the page renders without network access (air-gapped servers, archived runs)
        html = figure.to_html(include_plotlyjs=True, full_html=True)
        return html.encode(), "text/html"
    if not _is_instance(figure, "matplotlib.figure", "Figure"):
        raise InvalidArgument.for_field("figure", figure, "a matplotlib Figure for a .png or .svg name")
    buf = io.BytesIO()
    # no date in the SVG: the same figure gives the same bytes, so it is stored once
    metadata = {"Date": None} if suffix == ".svg" else None
    figure.savefig(buf, format=suffix[1:], bbox_inches="tight", metadata=metadata)
    return buf.getvalue(), "image/png" if suffix == ".png" else "image/svg+xml"


def encode_image(image: Any, name: str) -> bytes:
    """A numpy array (HxW gray, HxWx3 RGB, HxWx4 RGBA; uint8, or floats in [0, 1]) or a PIL image, as PNG."""
    _suffix(name, (".png",))
    if _is_instance(image, "PIL.Image", "Image"):
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()
    if type(image).__module__ != "numpy" or type(image).__name__ != "ndarray":
        raise InvalidArgument.for_field("image", image, "a numpy array or a PIL image")
    return _png(_as_uint8(image))


def _as_uint8(image: Any) -> Any:
    import numpy as np

    expected = "an HxW, HxWx1, HxWx3 or HxWx4 array"
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)) or 0 in image.shape:
        raise InvalidArgument.for_field("image", f"array of shape {image.shape}", expected)
    if image.dtype == np.uint8:
        return image
    if image.dtype.kind == "f":
        if not np.isfinite(image).all() or image.min() < 0 or image.max() > 1:
            raise InvalidArgument.for_field("image", f"float array in [{image.min()}, {image.max()}]", "floats in [0, 1]")
        return np.rint(image * 255).astype(np.uint8)
    if image.dtype.kind in "iu" and image.size and image.min() >= 0 and image.max() <= 255:
        return image.astype(np.uint8)
    raise InvalidArgument.for_field("image", f"{image.dtype} array", "uint8 values, integers in 0..255 or floats in [0, 1]")


def _png(pixels: Any) -> bytes:
    """PNG bytes of an HxW (gray), HxWx3 (RGB) or HxWx4 (RGBA) uint8 array: the standard library's zlib is all it takes."""
    height, width = pixels.shape[:2]
    channels = 1 if pixels.ndim == 2 else pixels.shape[2]
    color_type = {1: 0, 3: 2, 4: 6}[channels]  # gray, RGB, RGBA
    rows = pixels.reshape(height, -1)
    raw = b"".join(b"\x00" + rows[y].tobytes() for y in range(height))  # filter type 0 on every row

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")
