"""Model specs: every shipped spec loads; bad specs give one-line errors naming file, table, key."""

import pytest

from bayesbond.errors import DataError, SpecError
from bayesbond.workflow import specs

SHIPPED = specs.shipped_specs()

GOOD = """
family = "factor_regression"
[model]
factors = ["CMKT", "TERM"]
pooling = "hierarchical"
[priors]
beta_scale = { CMKT = 2.0, TERM = 1.0 }
alpha_scale = 0.05
beta_mean = [1.0, -0.5]
[sampler]
draws = 200
chains = 2
"""


def write(tmp_path, text, name="my_model.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_the_promised_variants_are_shipped():
    families = {name: specs.load_spec(path).family for name, path in SHIPPED.items()}
    assert {"benchmark", "benchmark_pooled", "hierarchical", "multifactor", "ou_short_rate",
            "efm2", "affine3"} <= set(families)
    assert families["ou_short_rate"] == "ou" and families["efm2"] == "affine"
    loaded = {n: specs.load_spec(n) for n in SHIPPED}  # by name too
    assert loaded["benchmark"].model["factors"] == ["CMKT", "TERM"]
    assert loaded["hierarchical"].model["pooling"] == "hierarchical"
    assert loaded["benchmark_pooled"].model["pooling"] == "pooled"
    assert len(loaded["multifactor"].model["factors"]) > 2
    assert loaded["efm2"].model["kind"] == "efm2"
    assert loaded["affine3"].model["n_factors"] == 3


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_spec_loads_and_round_trips(name):
    spec = specs.load_spec(SHIPPED[name])
    assert spec.name == name
    assert spec.description
    assert spec.sampler["chains"] >= 1 and 0 < spec.sampler["target_accept"] < 1
    again = specs.parse_spec(spec.to_dict(), source=spec.source)
    assert again == spec


def test_good_spec_defaults_and_priors(tmp_path):
    spec = specs.load_spec(write(tmp_path, GOOD))
    assert spec.name == "my_model"
    assert spec.sampler == {"draws": 200, "tune": 1000, "chains": 2, "target_accept": 0.9,
                            "seed": None, "sampler": "nutpie"}
    assert spec.priors == {"beta_scale": {"CMKT": 2.0, "TERM": 1.0}, "alpha_scale": 0.05,
                           "beta_mean": [1.0, -0.5]}
    assert spec.data["ret"] == "ret" and spec.model["errors"] == "normal"
    assert spec.sample_kwargs() == {"draws": 200, "tune": 1000, "chains": 2,
                                    "random_seed": None, "sampler": "nutpie"}
    faster = spec.replace_sampler(draws=50, tune=None)
    assert faster.sampler["draws"] == 50 and faster.sampler["tune"] == 1000
    with pytest.raises(SpecError, match=r"\[sampler\] draws: must be at least 1"):
        spec.replace_sampler(draws=0)


BAD = [
    # (change to GOOD, expected message pattern)
    (("pooling = \"hierarchical\"", "poolng = \"hierarchical\""),
     r"my_model\.toml: \[model\]: unknown key 'poolng'; did you mean 'pooling'\?"),
    (("draws = 200", "draws = \"200\""), r"\[sampler\] draws: must be an integer, got '200'"),
    (("draws = 200", "draws = 2.5"), r"\[sampler\] draws: must be an integer"),
    (("chains = 2", "chains = true"), r"\[sampler\] chains: must be an integer"),
    (("draws = 200", "draws = -5"), r"\[sampler\] draws: must be at least 1, got -5"),
    (("draws = 200", "target_accept = 1.5"), r"target_accept: must be strictly between 0 and 1"),
    (("draws = 200", "samplr = \"pymc\""), r"unknown key 'samplr'; did you mean 'sampler'\?"),
    (("draws = 200", "sampler = \"gibbs\""), r"\[sampler\] sampler: must be one of 'nutpie'"),
    (("CMKT = 2.0", "CMKT = -2.0"),
     r"\[priors\] beta_scale\['CMKT'\]: impossible prior: a scale or shape must be positive, "
     r"got -2\.0"),
    (("alpha_scale = 0.05", "alpha_scale = 0"), r"\[priors\] alpha_scale: impossible prior"),
    (("alpha_scale = 0.05", "alpha_scal = 1.0"),
     r"unknown prior 'alpha_scal'.*did you mean 'alpha_scale'\?"),
    (("alpha_scale = 0.05", "alpha_scale = \"wide\""), r"\[priors\] alpha_scale: must be a number"),
    (("alpha_scale = 0.05", "alpha_scale = nan"), r"\[priors\] alpha_scale: must be finite"),
    (("family = \"factor_regression\"", "family = \"factor_regresion\""),
     r"unknown family 'factor_regresion'; did you mean 'factor_regression'\?"),
    (("family = \"factor_regression\"", ""), r"missing key 'family'"),
    (("factors = [\"CMKT\", \"TERM\"]", "factors = \"CMKT\""),
     r"\[model\] factors: must be a list of strings"),
    (("factors = [\"CMKT\", \"TERM\"]", "factors = [\"CMKT\", \"CMKT\"]"),
     r"\[model\] factors: repeats 'CMKT'"),
    (("factors = [\"CMKT\", \"TERM\"]", ""), r"\[model\] factors: missing"),
    (("pooling = \"hierarchical\"", "pooling = \"partial\""),
     r"\[model\] pooling: must be one of 'pooled', 'unpooled', 'hierarchical'"),
    (("family =", "draws = 10\nfamily ="),
     r"top level: unknown key 'draws'; 'draws' belongs in \[sampler\]"),
    (("[sampler]", "chains = 2\n[sampler]"),
     r"\[priors\]: unknown prior 'chains'.*; 'chains' belongs in \[sampler\]"),
    (("[model]", "[modle]"), r"unknown key 'modle'; did you mean 'model'\?"),
    (("chains = 2", "chains = 2\n[[oops"), r"not valid TOML"),
]


@pytest.mark.parametrize(("change", "pattern"), BAD, ids=[p[:40] for _, p in BAD])
def test_bad_spec_gives_clear_one_line_error(tmp_path, change, pattern):
    old, new = change
    assert old in GOOD
    path = write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(SpecError, match=pattern) as info:
        specs.load_spec(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(str(path))


def test_family_specific_checks():
    base = {"family": "affine", "data": {"columns": ["m3", "m6"], "maturities": [0.25]}}
    with pytest.raises(SpecError, match=r"1 maturities for 2 columns"):
        specs.parse_spec(base)
    base["data"] = {"columns": ["m3", "m6"], "maturities": [0.5, 0.25]}
    with pytest.raises(SpecError, match="strictly increasing"):
        specs.parse_spec(base)
    base["data"] = {"columns": ["m3"]}
    with pytest.raises(SpecError, match="both 'columns' and 'maturities'"):
        specs.parse_spec(base)
    with pytest.raises(SpecError, match=r"2 columns for an 1-dimensional OU"):
        specs.parse_spec({"family": "ou", "data": {"columns": ["a", "b"]}})
    with pytest.raises(SpecError, match=r"\[model\]: unknown key 'factors'"):
        specs.parse_spec({"family": "ou", "model": {"factors": ["a"]}})
    with pytest.raises(SpecError, match=r"\[model\] dt: must be positive"):
        specs.parse_spec({"family": "ou", "model": {"dt": -1.0}})
    with pytest.raises(SpecError, match=r"\[model\] dt: must be finite"):
        specs.parse_spec({"family": "ou", "model": {"dt": float("inf")}})


def test_missing_spec_file_lists_shipped(tmp_path):
    with pytest.raises(SpecError, match=r"spec file not found \(shipped specs: .*benchmark"):
        specs.load_spec(tmp_path / "nope.toml")


def test_spec_is_never_executed(tmp_path):
    # TOML has no code: a python-looking value is just a string, and unknown keys are rejected
    path = write(tmp_path, GOOD.replace('pooling = "hierarchical"',
                                        'pooling = "__import__(\'os\').system(\'false\')"'))
    with pytest.raises(SpecError, match=r"\[model\] pooling: must be one of"):
        specs.load_spec(path)


def test_check_columns_names_file_spec_and_column(tmp_path):
    spec = specs.load_spec(write(tmp_path, GOOD))
    specs.check_columns(spec, ["date", "bond", "ret"], "panel.csv", ["date", "CMKT", "TERM"],
                        "factors.csv")
    with pytest.raises(DataError, match=r"factors\.csv: unknown factor 'TERM' named by .*"
                                        r"my_model\.toml \[model\] factors; did you mean 'TERM_'"):
        specs.check_columns(spec, ["date", "bond", "ret"], "panel.csv",
                            ["date", "CMKT", "TERM_"], "factors.csv")
    with pytest.raises(DataError, match=r"panel\.csv: column 'ret' named by .* \[data\] ret is "
                                        r"missing \(did you mean 'rets'\?\)"):
        specs.check_columns(spec, ["date", "bond", "rets"], "panel.csv", ["date", "CMKT", "TERM"])
    # factors read from the panel file itself
    specs.check_columns(spec, ["date", "bond", "ret", "CMKT", "TERM"], "panel.csv")
    ou = specs.parse_spec({"family": "ou", "data": {"columns": ["TB3MS"]}}, source="ou.toml")
    with pytest.raises(DataError, match=r"rates\.csv: column 'TB3MS' named by ou\.toml"):
        specs.check_columns(ou, ["date", "DGS10"], "rates.csv")


def test_location_priors_may_be_negative():
    spec = specs.parse_spec({"family": "factor_regression", "model": {"factors": ["CMKT"]},
                             "priors": {"beta_mean": -1.0, "log_sigma_mean": -4.0}})
    assert spec.priors == {"beta_mean": -1.0, "log_sigma_mean": -4.0}
    ou = specs.parse_spec({"family": "ou", "priors": {"kappa": [-0.7, 1.5], "sigma": 0.02}})
    assert ou.priors == {"kappa": [-0.7, 1.5], "sigma": 0.02}
    aff = specs.parse_spec({"family": "affine",
                            "priors": {"eig_raw": [[-3.0, -0.7, -1.4], [1.5, 1.0, 1.5]]}})
    assert aff.priors["eig_raw"][1] == [1.5, 1.0, 1.5]


@pytest.mark.parametrize(("family", "prior", "pattern"), [
    ("ou", {"kappa": [-0.7, -1.5]}, r"\[priors\] kappa scale: impossible prior"),
    ("ou", {"sigma": -0.1}, r"\[priors\] sigma: impossible prior"),
    ("ou", {"theta": [1.0, 2.0, 3.0]}, r"\[priors\] theta: must be a positive number \(a scale\)"
                                        r" or a pair \[location, scale\]"),
    ("ou", {"A_offdiag": 1.0}, r"unknown prior 'A_offdiag' for family 'ou'"),
    ("affine", {"eig_raw": [[0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]},
     r"\[priors\] eig_raw scale\[1\]: impossible prior"),
    ("affine", {"sigma_e": 1.0}, r"unknown prior 'sigma_e'"),
])
def test_term_structure_priors(family, prior, pattern):
    with pytest.raises(SpecError, match=pattern):
        specs.parse_spec({"family": family, "priors": prior})


def test_affine_stationary_key_reaches_the_model(tmp_path):
    """[model] stationary (default true) is the AffineModel's hard stability switch."""
    from bayesbond.bayes.affine_model import AffineModel

    assert AffineModel.from_spec(specs.load_spec("affine3"))[0].stationary is True
    raw = specs.load_spec("affine3").to_dict()
    raw["model"]["stationary"] = False
    assert AffineModel.from_spec(specs.parse_spec(raw))[0].stationary is False
    raw["model"]["stationary"] = "yes"
    with pytest.raises(SpecError, match=r"\[model\] stationary: must be true or false"):
        specs.parse_spec(raw)
