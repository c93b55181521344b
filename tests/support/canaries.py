"""Canaries: one value of each kind the redaction rules know, marked with where it was
planted (`tag`), and the places each may be found in afterwards."""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass
from pathlib import Path

SECRET_KINDS = ("aws", "bearer", "url", "jwt", "password", "card")
PERSONAL_KINDS = ("email", "phone", "iban")
TAGS = ("msg", "tb", "loc", "pay")


@dataclass(frozen=True, slots=True)
class Canary:
    tag: str
    kind: str
    text: str  # as planted
    trace: str  # a part no redaction leaves behind

    @property
    def personal(self) -> bool:
        return self.kind in PERSONAL_KINDS


def _luhn_digit(body: str) -> str:
    total = 0
    for position, char in enumerate(reversed(body)):
        value = int(char) * (1 if position % 2 else 2)
        total += value - 9 if value > 9 else value
    return str(-total % 10)


def _iban(bban: str) -> str:
    check = 98 - int("".join(str(int(c, 36)) for c in bban + "DE00")) % 97
    return f"DE{check:02d}{bban}"


def canaries(tag: str) -> list[Canary]:
    """One canary of each kind, distinct for each tag."""
    n = TAGS.index(tag)
    card_body = f"453914880343{n:03d}"
    card = card_body + _luhn_digit(card_body)
    jwt_body = base64.urlsafe_b64encode(json.dumps({"canary": tag}).encode()).decode()
    jwt_body = jwt_body.rstrip("=")
    iban = _iban(f"37040044053201{n:04d}")
    spaced = " ".join(card[i : i + 4] for i in range(0, 16, 4))
    made = [
        ("aws", f"AKIA{(tag.upper() + 'CANARY0123456789')[:16]}", None),
        ("bearer", f"Authorization: Bearer cnry.{tag}.9f8e7d6c5b4a", f"cnry.{tag}."),
        ("url", f"postgres://app:Pw0rd{tag}@db.example.com/app", f"Pw0rd{tag}"),
        ("jwt", f"eyJhbGciOiJIUzI1NiJ9.{jwt_body}.c2lnbmF0dXJl", jwt_body),
        ("password", f"password=hunter2{tag}", f"hunter2{tag}"),
        ("card", spaced, spaced[-9:]),
        ("email", f"{tag}.canary@example.org", f"{tag}.canary@"),
        ("phone", f"+44 20 7946 0{n}{n}{n}", f"7946 0{n}{n}{n}"),
        ("iban", iban, iban[-10:]),
    ]
    return [Canary(tag, kind, text, trace or text) for kind, text, trace in made]


def text_of(tag: str) -> str:
    return "; ".join(c.text for c in canaries(tag))


def found(canary: Canary, text: str) -> bool:
    """The canary or its trace in `text`, its digits also without spaces."""
    compact = canary.trace.replace(" ", "")
    return canary.trace in text or (compact != canary.trace and compact in text)


def every_canary() -> list[Canary]:
    return [c for tag in TAGS for c in canaries(tag)]


def leaks(text: str, *, personal_allowed: bool, payload_allowed: bool = False) -> list[str]:
    """The canaries `text` may not hold but does."""
    return [
        f"{c.tag}/{c.kind}"
        for c in every_canary()
        if found(c, text)
        and not (c.personal and personal_allowed)
        and not (c.tag == "pay" and payload_allowed)
    ]


def forensic_records(folder: Path) -> str:
    """Every forensic record under `folder`, decompressed."""
    return "\n".join(gzip.decompress(p.read_bytes()).decode() for p in folder.rglob("*.gz"))
