"""The experiment file: defaults, overrides and clear refusals of bad values."""

from __future__ import annotations

import pytest

from tuning.config import load_experiment, parse_override
from tuning.errors import ConfigError, UserError
from tuning.schema import DEFAULTS
from tuning.space import candidates


def test_defaults_need_no_file():
    experiment = load_experiment()
    assert experiment.name == "digits"
    assert experiment.space == {"lr": [0.01, 0.05, 0.1], "batch_size": [16, 32, 64], "hidden_units": [32, 64, 128]}
    assert experiment.search["repeats"] == 2 and experiment.train["epochs"] == 30


def test_file_values_and_overrides(tmp_path):
    path = tmp_path / "exp.toml"
    path.write_text('name = "mine"\n[train]\nepochs = 5\n[search.space]\nlr = [0.1, 0.2]\n')
    experiment = load_experiment(path, ["train.batch_size=8", "data.dataset=iris", "search.space.dropout=[0.0, 0.5]"])
    assert experiment.name == "mine"
    assert experiment.train["epochs"] == 5 and experiment.train["batch_size"] == 8
    assert experiment.data["dataset"] == "iris"  # a bare word is taken as a string
    # A space given in the file replaces the default one; --set adds a key to it.
    assert experiment.space == {"lr": [0.1, 0.2], "dropout": [0.0, 0.5]}
    assert experiment.train["lr"] == DEFAULTS["train"]["lr"]


def test_resolved_config_round_trips_through_toml(tmp_path):
    experiment = load_experiment(None, ["search.strategy=random",
                                        "search.space.lr={low = 1e-3, high = 1.0, log = true}"])
    path = tmp_path / "config.toml"
    path.write_text(experiment.to_toml())
    assert load_experiment(path).config == experiment.config


@pytest.mark.parametrize("overrides, message", [
    (["train.lrr=0.1"], r"unknown key 'train.lrr' \(did you mean 'lr'\?\)"),
    (["trian.lr=0.1"], r"unknown key 'trian'"),
    (["train.lr=0"], r"train.lr must be a number > 0, got 0"),
    (["train.lr=-1.5"], r"train.lr must be a number > 0, got -1.5"),
    (["train.lr=fast"], r"train.lr must be a number > 0, got 'fast' \(string\)"),
    (["train.batch_size=0"], r"train.batch_size must be an integer >= 1, got 0"),
    (["train.batch_size=3.5"], r"train.batch_size must be an integer >= 1, got 3.5"),
    (["train.epochs=true"], r"train.epochs must be an integer >= 1, got True"),
    (["train.activation=swish"], r"train.activation must be one of 'relu', 'leaky_relu'"),
    (["search.n_jobs=0"], r"search.n_jobs must be a non-zero integer"),
    (["search.space.lr=[]"], r"search.space.lr must be a non-empty list"),
    (["search.space.lr=[0.1, -0.1]"], r"train.lr must be a number > 0, got -0.1"),
    (["search.space.lr=[0.1, 0.1]"], r"lists a value twice"),
    (["search.space.hidden=[[8], []]"], r"search.space.hidden lists \[\] \(hidden_units x hidden_layers\); write "
     r"those widths out instead, e.g. \[64\]"),
    (["search.space.colour=[1]"], r"unknown key 'search.space.colour'"),
    (["search.space.lr={low = 0.1, high = 1}"], r"grid search needs a list"),
    (["search.strategy=random", "search.space.lr={low = 1, high = 0.1}"], r"needs low < high"),
    (["search.strategy=random", "search.space.lr={low = 0.1}"], r"must be a range"),
    (["data.test_size=0.6", "data.val_size=0.5"], r"test_size \+ data.val_size must be in \(0, 1\)"),
    (["data.test_size=1.5"], r"data.test_size must be a number in \(0, 1\)"),
    (["name=../escape"], r"name must be a folder name"),
    (["train"], r"--set: expected section.key=value"),
    # a table or an array where a value belongs
    (["train.lr={a=1}"], r"train.lr must be a number > 0, got \{'a': 1\} \(table\)"),
    (["train.epochs=[3]"], r"train.epochs must be an integer >= 1, got \[3\] \(array\)"),
    (["data={dataset='iris'}", "data.dataset=[1]"], r"data.dataset must be .*got \[1\] \(array\)"),
    (["search.space.lr=[{a=1}]"], r"train.lr must be a number > 0, got \{'a': 1\} \(table\)"),
    (["search.space=5"], r"search.space must be a table"),
    (["train=1"], r"\[train\] must be a table"),
    # searches that cannot be done, refused up front with their size
    (["search.repeats=50", "search.space={lr=[1e-3, 1e-2, 0.1], "
      "batch_size=[8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096], "
      "hidden_units=[8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096], dropout=[0.0, 0.1, 0.2, 0.3, 0.4],"
      "weight_decay=[0.0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]}"],
     r"would run 22,500 configurations x 50 repeats.*more than 1,000,000 trials"),
    (["search.strategy=random", "search.n_trials=2000000"], r"2,000,000 configurations x 2 repeats"),
    (["search.strategy=random", "search.n_trials=5", "search.space={lr=[0.1, 0.2]}"],
     r"holds only 2 distinct configurations, fewer than search.n_trials = 5"),
    (["search.strategy=random", "search.n_trials=12", "search.space={hidden_units={low=1, high=10}}"],
     r"holds only 10 distinct configurations"),
    # a warm-up that outlasts training: the lr would never reach the value the trial is filed under
    (["train.epochs=5", "train.warmup_epochs=5"], r"warmup_epochs = 5 must be fewer than train.epochs = 5"),
    (["search.space={epochs=[4, 20], warmup_epochs=[2, 4]}"], r"warmup_epochs = 4 must be fewer than train.epochs = 4"),
    (["search.strategy=random", "search.space={warmup_epochs={low=0, high=40}}"], r"warmup_epochs = 40 must be fewer"),
])
def test_bad_values_are_refused_with_what_was_expected(overrides, message):
    with pytest.raises(UserError, match=message):
        load_experiment(None, overrides)


@pytest.mark.parametrize("content, message", [
    (b"[train\nepochs = 3", "is not valid TOML"),
    ("[train]\nepochs = 3\n".encode("utf-16"), "is not UTF-8 text"),
    (bytes(range(256)), "is not UTF-8 text"),
    (b"\x00\x01\x02", "is not valid TOML"),
    (b"a = " + b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b"# " + b"x" * (1 << 20), "is 1,048,578 bytes, not an experiment file"),
])
def test_unreadable_and_invalid_files(tmp_path, content, message):
    with pytest.raises(ConfigError, match="cannot read"):
        load_experiment(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        load_experiment(bad)


def test_a_deeply_nested_override_is_refused():
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_experiment(None, ["train.lr=" + "[" * 5000 + "]" * 5000])


def test_random_search_draws_again_instead_of_repeating_a_configuration():
    # 12 integer values and 10 draws: repeats are certain with this seed; each is drawn again.
    experiment = load_experiment(None, ["search.strategy=random", "search.n_trials=10",
                                        "search.space={hidden_units={low=1, high=12}}"])
    draws = candidates(experiment)
    assert len(draws) == 10 and len({d["hidden_units"] for d in draws}) == 10
    assert candidates(experiment) == draws  # and reproducibly so


def test_parse_override_uses_toml_values():
    assert parse_override("train.lr=1e-3") == (["train", "lr"], 0.001)
    assert parse_override("search.space.batch_size=[16, 32]") == (["search", "space", "batch_size"], [16, 32])
    assert parse_override('data.dataset="my data.csv"') == (["data", "dataset"], "my data.csv")


def test_execution_keys_do_not_change_what_is_computed():
    a = load_experiment(None, ["search.n_jobs=1"])
    b = load_experiment(None, ["search.n_jobs=2"])
    assert a.comparable() == b.comparable()
    assert a.comparable() != load_experiment(None, ["train.epochs=3"]).comparable()
