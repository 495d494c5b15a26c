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
