import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

import zoo
from zoo import config


@dataclass
class Example(zoo.Config):
    lr: float = zoo.option(2e-4, "learning rate")
    width: int | None = zoo.option(None, "width")
    loss: Literal["bce", "hinge"] = zoo.option("bce", "loss")
    ema: bool = zoo.option(False, "ema")
    betas: tuple[float, float] = zoo.option((0.5, 0.999), "betas")


def test_defaults_then_file_then_set_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('lr = 0.1\nloss = "hinge"\nbatch_size = 7\n')
    cfg = config.resolve(Example, config_file=path, sets=["lr=0.5", "batch_size=9"], flags={"batch_size": 11})
    assert (cfg.lr, cfg.loss, cfg.batch_size, cfg.width) == (0.5, "hinge", 11, None)


def test_json_config_file(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"width": 32, "betas": [0.0, 0.9]}')
    cfg = config.resolve(Example, config_file=path)
    assert cfg.width == 32 and cfg.betas == (0.0, 0.9)


def test_set_parses_each_type() -> None:
    cfg = config.resolve(Example, sets=["width=64", "ema=true", "betas=0.1,0.2", "loss=hinge"])
    assert (cfg.width, cfg.ema, cfg.betas, cfg.loss) == (64, True, (0.1, 0.2), "hinge")
    assert config.resolve(Example, sets=["width=none"]).width is None


def test_unknown_key_lists_valid_keys_and_suggests() -> None:
    with pytest.raises(zoo.UsageError) as err:
        config.resolve(Example, sets=["lrr=0.1"])
    message = str(err.value)
    assert "did you mean lr?" in message and "valid keys: batch_size, lr, width" in message


@pytest.mark.parametrize("item, expected", [
    ("lr=fast", "expected a number"),
    ("width=wide", "expected an integer or none"),
    ("loss=mse", "expected one of bce|hinge"),
    ("ema=maybe", "expected true or false"),
    ("betas=1", "expected comma-separated"),
    ("lr", "expects key=value"),
])
def test_bad_values_say_what_was_expected(item: str, expected: str) -> None:
    with pytest.raises(zoo.UsageError, match=expected):
        config.resolve(Example, sets=[item])


def test_wrong_type_in_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"batch_size": 1.5}')
    with pytest.raises(zoo.UsageError, match="batch_size = 1.5"):
        config.resolve(Example, config_file=path)


def test_unreadable_or_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(zoo.UsageError, match="does not exist"):
        config.resolve(Example, config_file=tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("lr = = 1")
    with pytest.raises(zoo.UsageError, match="could not be parsed"):
        config.resolve(Example, config_file=bad)


def test_post_init_validation() -> None:
    with pytest.raises(zoo.UsageError, match="batch_size must be at least 1"):
        config.resolve(Example, sets=["batch_size=0"])


def test_round_trip_through_dict() -> None:
    cfg = config.resolve(Example, sets=["betas=0.1,0.2", "width=3"])
    assert config.from_dict(Example, config.to_dict(cfg), source="test") == cfg


def test_describe_lists_fields_with_help() -> None:
    fields = {f.name: f for f in config.describe(Example)}
    assert fields["lr"].help == "learning rate" and fields["lr"].default == 2e-4
    assert fields["loss"].type == "one of bce|hinge"


@dataclass
class Unbounded(zoo.Config):
    patience: float = zoo.option(float("inf"), "steps to wait; inf: forever", infinite=True)


@pytest.mark.parametrize(("item", "expected"), [
    ("lr=nan", "--set lr=nan: expected a finite number"),
    ("lr=inf", "--set lr=inf: expected a finite number"),
    ("lr=-1e309", "expected a finite number"),  # overflows to -inf
    ("betas=0.5,nan", "--set betas=0.5,nan: expected a finite number"),
    ("width=2147483648", "expected an integer from -2,147,483,647 to 2,147,483,647"),
    ("batch_size=-99999999999999999999", "expected an integer from"),
])
def test_numbers_no_network_can_use_are_refused(item: str, expected: str) -> None:
    with pytest.raises(zoo.UsageError, match=re.escape(expected)):
        config.resolve(Example, sets=[item])


def test_a_key_may_allow_infinity_never_nan() -> None:
    assert config.resolve(Unbounded, sets=["patience=inf"]).patience == float("inf")
    with pytest.raises(zoo.UsageError, match=re.escape("expected a finite number (or inf)")):
        config.resolve(Unbounded, sets=["patience=nan"])


@pytest.mark.parametrize(("name", "body", "expected"), [
    ("nan.json", '{"lr": NaN}', "lr = nan in"),
    ("inf.toml", "lr = inf\n", "lr = inf in"),
    ("huge.toml", f"width = {10**30}\n", "width = 1000000000000000000000000000000 in"),
    ("deep.json", "[" * 100_000 + "]" * 100_000, "could not be parsed: JSON nested more than 100 deep"),
    ("deep.toml", "a = " + "[" * 100_000 + "]" * 100_000 + "\n", "could not be parsed"),
    ("binary.toml", "\udcff", "could not be parsed"),
])
def test_config_files_of_hostile_numbers_or_nesting_are_one_line(tmp_path: Path, name: str, body: str,
                                                                  expected: str) -> None:
    path = tmp_path / name
    path.write_bytes(body.encode("utf-8", "surrogateescape"))
    with pytest.raises(zoo.UsageError, match=re.escape(expected)):
        config.resolve(Example, config_file=path)


def test_json_is_read_to_a_bounded_depth_without_recursion() -> None:
    assert config.parse_json("[" * config.JSON_DEPTH + "]" * config.JSON_DEPTH) == \
        json.loads("[" * config.JSON_DEPTH + "]" * config.JSON_DEPTH)
    for depth in (config.JSON_DEPTH + 1, 900, 100_000):  # parsed but too deep; json's own RecursionError
        with pytest.raises(ValueError, match="JSON nested more than 100 deep"):
            config.parse_json('{"a": ' + "[" * depth + "]" * depth + "}")


@pytest.mark.parametrize(("value", "low", "high", "above", "expected"), [
    (float("nan"), 0, 1e9, True, "--x must be a number more than 0 and at most 1e+09, got nan"),
    (float("inf"), 0.001, 1e9, False, "--x must be a number from 0.001 to 1e+09, got inf"),
    (2**64, 0, 2**32 - 1, False, "--x must be a whole number from 0 to 4,294,967,295, got 18446744073709551616"),
    (10**5000, 1, 10, False, "got an integer of 5001 digits"),
    (0, 1, 10, False, "--x must be a whole number from 1 to 10, got 0"),
], ids=["nan", "inf", "seed", "huge", "zero"])
def test_within_names_the_option_its_range_and_the_value(value, low, high, above, expected) -> None:
    with pytest.raises(zoo.UsageError, match=re.escape(expected)):
        config.within("--x", value, low, high, above=above)
    config.within("--x", None, low, high)
    config.within("--x", high, low, high)
