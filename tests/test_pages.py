"""The book's prose pages agree with the code they describe."""

import re
from pathlib import Path

import pytest

from mtlutils import data

BOOK = Path(__file__).resolve().parent.parent / "book"


def _sizes(cell: str) -> tuple[int, int, int] | None:
    numbers = [int(n.replace(",", "")) for n in re.findall(r"[\d,]+", cell)]
    return tuple(numbers) if len(numbers) == 3 else None


@pytest.mark.parametrize("name", ["clusters", "multimnist", "digit_attributes"])
def test_the_datasets_page_gives_the_sizes_that_load_returns(name):
    row = next(line for line in (BOOK / "datasets.md").read_text().splitlines() if line.startswith(f"| `{name}` |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    for size, cell in zip(("smoke", "small"), cells[2:4]):
        suite = data.load(name, size)
        assert _sizes(cell) == (len(suite.train), len(suite.val), len(suite.test)), f"{name} {size}: {cell}"
