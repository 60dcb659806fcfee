"""docker.limit's parameters: sizes as people write them, at least one limit asked for."""
import pytest
from pydantic import ValidationError

from harness.faults.base import size_bytes
from harness.faults.docker import LimitParams


@pytest.mark.parametrize("text,size", [("64m", 64 * 1024 ** 2), ("1g", 1024 ** 3),
                                       ("512k", 512 * 1024), ("8388608", 8388608), ("16M", 16 * 1024 ** 2)])
def test_sizes(text, size):
    assert size_bytes(text) == size


def test_a_size_that_is_none_is_refused():
    with pytest.raises(ValueError, match="not a size"):
        size_bytes("lots")


def test_a_limit_names_cpus_or_memory_and_nothing_silly():
    assert LimitParams.model_validate({"cpus": 0.2, "memory": "64m"}).memory == 64 * 1024 ** 2
    assert LimitParams.model_validate({"headroom": "1m"}).headroom == 1024 ** 2
    for bad, words in (({}, "needs `cpus:`"), ({"cpus": 0}, "greater than 0"),
                       ({"memory": "1m"}, "greater than or equal"),
                       ({"memory": "64m", "headroom": "1m"}, "not both")):
        with pytest.raises(ValidationError, match=words):
            LimitParams.model_validate(bad)
