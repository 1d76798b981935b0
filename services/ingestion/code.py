"""The code kept out of the hot model: each graph version's ``raw_code``/``compiled_code`` object.

The object is one JSON document ``{unique_id: {"raw_code": ..., "compiled_code": ...}}``. Reading one
node's code decodes the document's top level into unparsed slices (``msgspec.Raw``) and then only that
node's entry; the last few documents' indexes stay in memory.
"""

from __future__ import annotations

from collections import OrderedDict

import msgspec

from contracts.graph import CodeRecord
from services.shared.objectstore.port import TenantObjectStore

_index = msgspec.json.Decoder(dict[str, msgspec.Raw])
_record = msgspec.json.Decoder(CodeRecord)
_cache: OrderedDict[tuple[str, str], dict[str, msgspec.Raw]] = OrderedDict()
_CACHE_SIZE = 4


async def code_of(objects: TenantObjectStore, code_key: str, unique_id: str) -> CodeRecord:
    """The node's code at the version whose code object is ``code_key`` (empty if the node has none)."""
    cache_key = (objects.tenant_id, code_key)
    index = _cache.get(cache_key)
    if index is None:
        index = _index.decode(await objects.get(code_key))
        _cache[cache_key] = index
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    else:
        _cache.move_to_end(cache_key)
    raw = index.get(unique_id)
    return CodeRecord() if raw is None else _record.decode(raw)
