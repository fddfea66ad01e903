"""A second Zarr reader for the tests: every store xfacies writes is read back with tensorstore
(Google's C++ Zarr implementation, no zarr-python underneath) and compared with ``xr.open_zarr``.

The raw arrays come from tensorstore, the attributes and dimension names from the store's own
JSON (``.zattrs``/``.zarray`` for Zarr v2, ``zarr.json`` for v3); xarray's CF decoding (times,
fill values) is then applied to them, so what differs can only be the storage layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import xarray as xr

#: Zarr data types tensorstore does not read (it has no string type): checked with zarr-python only.
STRING_TYPES = {"string", "|O", "fixed_length_utf32", "null_terminated_bytes"}


def _meta(var: Path) -> tuple[dict, list[str], str, object]:
    if (var / "zarr.json").exists():
        m = json.loads((var / "zarr.json").read_text())
        attrs = dict(m.get("attributes", {}))
        dims = m.get("dimension_names") or attrs.pop("_ARRAY_DIMENSIONS", [])
        return attrs, list(dims), str(m["data_type"]), m.get("fill_value")
    m = json.loads((var / ".zarray").read_text())
    attrs = json.loads((var / ".zattrs").read_text()) if (var / ".zattrs").exists() else {}
    dims = attrs.pop("_ARRAY_DIMENSIONS", [])
    return attrs, list(dims), str(m["dtype"]), m.get("fill_value")


def read_with_tensorstore(store: str | Path) -> tuple[xr.Dataset, list[str]]:
    """The store's variables read by tensorstore and CF-decoded; and the names left out (strings)."""
    import tensorstore as ts

    store = Path(store)
    v3 = (store / "zarr.json").exists()
    variables, skipped = {}, []
    for var in sorted(p for p in store.iterdir() if p.is_dir()):
        if not ((var / "zarr.json").exists() or (var / ".zarray").exists()):
            continue
        attrs, dims, dtype, fill = _meta(var)
        if dtype in STRING_TYPES or dtype.startswith(("<U", "|U", "|S")):
            skipped.append(var.name)
            continue
        arr = ts.open({"driver": "zarr3" if v3 else "zarr",
                       "kvstore": {"driver": "file", "path": str(var)}}, read=True).result()
        raw = np.asarray(arr.read().result())
        # xarray reads a Zarr v2 array's fill value as its CF _FillValue (any dtype), a v3 float's too
        if fill is not None and "_FillValue" not in attrs and (not v3 or np.issubdtype(raw.dtype, np.floating)):
            attrs["_FillValue"] = fill
        variables[var.name] = xr.Variable(dims, raw, attrs)
    ds = xr.decode_cf(xr.Dataset(variables))
    return ds, skipped


def assert_same_in_tensorstore(store: str | Path) -> list[str]:
    """Every non-string variable of ``store`` has the same dims and values (NaN = NaN) in
    tensorstore as in ``xr.open_zarr``; returns the string variables it could not read."""
    ts_ds, skipped = read_with_tensorstore(store)
    xr_ds = xr.open_zarr(store)
    names = [n for n in xr_ds.variables if n not in skipped]
    for n in skipped:  # only text is left to zarr-python
        assert xr_ds[n].dtype.kind in "OUST", (n, xr_ds[n].dtype)
    assert sorted(names) == sorted(ts_ds.variables), (sorted(names), sorted(ts_ds.variables))
    for n in names:
        a, b = xr_ds[n].variable, ts_ds[n].variable
        assert a.dims == b.dims, (n, a.dims, b.dims)
        av, bv = np.asarray(a.values), np.asarray(b.values)
        if np.issubdtype(av.dtype, np.floating) or np.issubdtype(bv.dtype, np.floating):
            np.testing.assert_array_equal(av.astype(np.float64), bv.astype(np.float64), err_msg=n)
        else:
            np.testing.assert_array_equal(av, bv, err_msg=n)
    return skipped
