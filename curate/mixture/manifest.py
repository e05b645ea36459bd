"""A built mixture as its manifest says: what the build, the report and the loader share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from curate.errors import CurateError
from curate.store import Store

BYTES_EOS, BYTES_VOCAB = 256, 257  # the bytes tokenizer: ids 0..255, then EOS


@dataclass(frozen=True)
class MixtureManifest:
    """What ``build_mixture`` wrote; ``data`` is the parsed ``manifest.json``."""

    store: Store
    name: str
    data: dict[str, Any]

    @property
    def dir(self) -> str:
        return self.store.mixtures_dir(self.name)

    @property
    def parts(self) -> list[dict[str, Any]]:
        return self.data["parts"]

    @property
    def fingerprint(self) -> str:
        return self.data["fingerprint"]

    def stream_tokens(self) -> list[int]:
        """Per part, its tokens in the stream: every document's plus one EOS each."""
        return [int(p["tokens"]) + int(p["rows"]) for p in self.parts]

    def vocabulary(self) -> tuple[int, int]:
        """(the id after every document, how many ids there are): bytes use 0..255 and EOS = 256; a Hugging
        Face tokenizer its own EOS and vocabulary size, recorded at build time."""
        info = self.data.get("tokenizer_info")
        if info is None:
            return BYTES_EOS, BYTES_VOCAB
        return int(info["eos_token_id"]), int(info["vocab_size"])

    @classmethod
    def load(cls, store: Store | str, name: str) -> MixtureManifest:
        st = Store.of(store)
        data = st.read_json(f"{st.mixtures_dir(name)}/manifest.json")
        if data is None:
            raise CurateError(f"no mixture {name!r} in store {st.uri!r}: build it with `curate mix build SPEC`")
        return cls(st, name, data)
