from __future__ import annotations

import pytest

import zoo
from zoo import registry

from .conftest import FakeEntryPoint, run_cli


class NotAModel:
    name = "fake"


def test_builtins_and_the_installed_third_party_plugin_are_listed() -> None:
    reg = registry.registry()
    assert {"dcgan", "tiny"} <= set(reg.names())
    tiny = next(e for e in reg.entries() if e.name == "tiny")
    assert tiny.package.startswith("zoo-tiny") and not tiny.builtin and tiny.model is not None
    dcgan = next(e for e in reg.entries() if e.name == "dcgan")
    assert dcgan.builtin


def test_the_third_party_plugin_comes_from_its_entry_point() -> None:
    installed = {ep.name: ep for ep in registry.installed_entry_points()}
    assert installed["tiny"].value == "zoo_tiny:TinyGAN"
    assert installed["tiny"].dist.name == "zoo-tiny"


def test_unknown_model_suggests_close_names() -> None:
    with pytest.raises(zoo.UsageError, match="did you mean dcgan"):
        registry.get("dcgn")


def test_a_broken_plugin_is_listed_with_its_error_and_others_still_work(extra_plugins) -> None:
    extra_plugins(FakeEntryPoint("broken", "zoo_no_such_module:Model", "zoo-broken"))
    result = run_cli("list")
    assert result.exit_code == 0
    assert "broken" in result.output and "ModuleNotFoundError" in result.output
    assert run_cli("info", "dcgan").exit_code == 0
    with pytest.raises(zoo.ZooError, match="plugin 'broken' from zoo-broken 9.9 is broken"):
        registry.get("broken")


@pytest.mark.parametrize("target, problem", [
    ("tests.test_registry:NotAModel", "is not a subclass of zoo.Model"),
    ("zoo_tiny:TinyGAN", "registered as 'other'"),
])
def test_objects_that_break_the_contract_are_broken(extra_plugins, target: str, problem: str) -> None:
    name = "fake" if "NotAModel" in target else "other"
    reg = extra_plugins(FakeEntryPoint(name, target, "zoo-bad"))
    entry = next(e for e in reg.entries() if e.name == name)
    assert entry.model is None and problem in entry.error


def test_two_plugins_with_one_name_is_an_error_naming_both_packages(extra_plugins) -> None:
    extra_plugins(FakeEntryPoint("dcgan", "zoo_tiny:TinyGAN", "zoo-impostor"))
    with pytest.raises(zoo.ZooError) as err:
        registry.get("dcgan")
    assert "zoo-gan (built-in)" in str(err.value) and "zoo-impostor 9.9" in str(err.value)
    result = run_cli("list")
    assert result.exit_code == 0 and "name conflict" in result.output


def test_capability_refusal_names_the_models_that_can() -> None:
    class Translator(zoo.Model):
        name = "translator"
        capabilities = frozenset({zoo.Capability.IMAGE_TO_IMAGE})

    with pytest.raises(zoo.UsageError) as err:
        registry.registry().require(Translator, zoo.Capability.LATENT, "sample from noise")
    assert "translator cannot sample from noise: it lacks the 'latent' capability" in str(err.value)
    assert "dcgan" in str(err.value) and "tiny" in str(err.value)


def test_importing_zoo_loads_no_torch_and_no_plugin() -> None:
    import subprocess
    import sys

    code = ("import sys, zoo, zoo.cli, zoo.registry; zoo.registry.registry().names(); "
            "print('torch' in sys.modules, 'zoo.plugins.dcgan' in sys.modules, 'wandb' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "False"]
