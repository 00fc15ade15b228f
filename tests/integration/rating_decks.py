"""Rate decks for the rated-export tests, as file texts (``parse_deck``) or a directory."""

from __future__ import annotations

from pathlib import Path

DECK = '[deck]\ncurrency = "EUR"\ndecimals = 2\ntimezone = "UTC"\n'
R1 = """[revision]
id = "r1"
effective_from = "2020-01-01T00:00:00Z"

[[rate]]
id = "calls"
product = "call"
price = "0.60"
increments = "60/6"
connect_fee = "0.05"

[[rate]]
id = "calls-b"
product = "call"
app_key = "B"
price = "1.20"
increments = "1/1"

[[rate]]
id = "publish"
product = "publish"
price = "0.01"

[[rate]]
id = "viewers"
product = "play"
price = "0.006"

[[rate]]
id = "hls"
product = "hls"
price = "0.006"

[[rate]]
id = "sms"
product = "message"
price = "0.05"
"""
# from 22:14:15 UTC (15 s into the test period) calls cost half
R2 = R1.replace('"r1"', '"r2"').replace("2020-01-01T00:00:00Z", "2023-11-14T22:14:15Z")
R2 = R2.replace('price = "0.60"', 'price = "0.30"')


def texts(*revisions: str) -> dict[str, str]:
    return {"deck.toml": DECK} | {f"rev{i}.toml": text for i, text in enumerate(revisions)}


def write_deck(directory: Path, *revisions: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in texts(*revisions).items():
        (directory / name).write_text(text)
    return directory
