"""The shipped models and committed results are what the code produces, on the real CIFAR-10 test set."""
import copy
import shutil

import pytest

import aimc_lib
from aimc_lib import headline, zoo
from aimc_lib.checkpoints import CheckpointError
from aimc_lib.evaluation import accuracy
from aimc_lib.experiments import model_sha256
from aimc_lib.mapping import AnalogChip
from aimc_lib.pcm import PCMParams
from aimc_lib.periphery import Periphery
from aimc_lib.rng import STREAM_NAME
from aimc_lib.times import DAY_S, DEFAULT_TIMES_S, MONTH_S, YEAR_S
from aimc_lib.result_files import COMMITTED_RESULTS
from aimc_lib.times import PERIPHERY_TIMES_S
from project_scripts import ROOT, load_script

MODELS = ("resnet32-fp32", "resnet32-custom")
RESULTS = COMMITTED_RESULTS


def test_manifest_records_both_models():
    entries = zoo.manifest()
    assert set(MODELS) <= set(entries)
    for name in MODELS:
        e = entries[name]
        for key in ("file", "sha256", "log", "recipe", "epochs", "test_accuracy", "train_seconds",
                    "hardware", "torch", "aimc_lib", "date"):
            assert e.get(key) not in (None, ""), (name, key)
        assert len(e["sha256"]) == 64 and e["epochs"] == e["config"]["epochs"]
        assert len(zoo.training_log(name)["epochs"]) == e["epochs"]
    assert entries["resnet32-fp32"]["test_accuracy"] >= 92.0          # the bar
    custom = entries["resnet32-custom"]["config"]
    assert custom["eta_tr"] > 0 and custom["clip_alpha"] > 0 and custom["init_from"]


@pytest.mark.parametrize("name", MODELS)
def test_shipped_model_reaches_its_recorded_accuracy(name, cifar_test):
    model = aimc_lib.pretrained(name)
    assert aimc_lib.count_analog_weights(model) == 361_722
    # deterministic inference: exactly the accuracy recorded when the model was published
    assert accuracy(model, cifar_test) == zoo.manifest()[name]["test_accuracy"]


def test_corrupted_shipped_file_is_refused(tmp_path, monkeypatch):
    shutil.copytree(zoo.WEIGHTS_DIR, tmp_path / "weights")
    f = tmp_path / "weights" / zoo.manifest()["resnet32-fp32"]["file"]
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    monkeypatch.setattr(zoo, "WEIGHTS_DIR", tmp_path / "weights")
    with pytest.raises(CheckpointError, match="corrupted"):
        aimc_lib.pretrained("resnet32-fp32")


@pytest.mark.parametrize("name, comp", RESULTS)
def test_committed_result_is_complete(name, comp):
    res = zoo.results(f"{name}_{comp}")
    meta = res["meta"]
    assert meta["model"] == name and meta["compensation"] == comp
    assert meta["n_chips"] >= 10 and len(res["per_chip"]) == meta["n_chips"]
    assert res["times_s"] == DEFAULT_TIMES_S and {MONTH_S, YEAR_S} <= set(res["times_s"])
    assert meta["test_images"] == 10_000 and PCMParams(**meta["pcm_params"]) == PCMParams()
    assert meta["stream"] == STREAM_NAME
    assert meta["model_sha256"] == model_sha256(aimc_lib.pretrained(name))  # made from the shipped weights


def test_committed_results_meet_the_bars():
    custom = zoo.results("resnet32-custom_gdc")
    j0, jday = custom["times_s"].index(DEFAULT_TIMES_S[0]), custom["times_s"].index(DAY_S)
    assert custom["mean"][j0] >= 91.0 and custom["mean"][jday] >= 90.0
    direct = zoo.results("resnet32-fp32_gdc")
    assert direct["mean"][jday] < custom["mean"][jday]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("comp", ("gdc", "adabs"))
def test_committed_periphery_results_record_their_setup(name, comp):
    """The full periphery results: the aihwkit-like preset, the shipped weights, all test images,
    the grid plus 60 s, and chips paired with the ideal-periphery results (same first seeds)."""
    res = zoo.results(f"periphery/{name}_{comp}_aihwkit")
    meta = res["meta"]
    assert meta["model"] == name and meta["compensation"] == comp and meta["test_images"] == 10_000
    assert meta["n_chips"] == len(res["per_chip"]) >= (20 if name == "resnet32-fp32" else 10)
    assert res["times_s"] == PERIPHERY_TIMES_S and 60.0 in res["times_s"]
    assert Periphery(**meta["periphery"]) == Periphery.aihwkit_like(gdc_readout="periphery")
    assert PCMParams(**meta["pcm_params"]) == PCMParams() and meta["stream"] == STREAM_NAME
    assert meta["model_sha256"] == model_sha256(aimc_lib.pretrained(name))
    assert meta["seeds"][:10] == zoo.results(f"{name}_gdc")["meta"]["seeds"]
    if comp == "adabs":
        assert meta["calibration_images"] == 2000 and meta["calibration_augmented"] is True


@pytest.mark.parametrize("name", MODELS)
def test_committed_periphery_parts_are_paired_with_the_ideal_periphery(name):
    """The ``parts`` study: every variant is the one ``scripts/periphery_study.py`` defines, read
    on the same chips and all test images as the ideal periphery (so differences are chip by chip)."""
    study = load_script("periphery_study")
    ideal = zoo.results(f"periphery/{name}_gdc_ideal")["meta"]
    assert ideal["n_chips"] == (20 if name == "resnet32-fp32" else 10) and ideal["test_images"] == 10_000
    committed = {p.name for p in (zoo.RESULTS_DIR / "periphery").glob(f"{name}_gdc_*.json")}
    assert {f"{name}_gdc_{variant}.json" for variant in study.PARTS} == committed
    for variant, (per, params) in study.PARTS.items():
        res = zoo.results(f"periphery/{name}_gdc_{variant}")
        meta = res["meta"]
        assert DAY_S in res["times_s"], variant
        assert meta["seeds"][:ideal["n_chips"]] == ideal["seeds"] and meta["test_images"] == 10_000, variant
        assert Periphery(**meta["periphery"]) == per, variant
        assert PCMParams(**meta["pcm_params"]) == params and meta["stream"] == STREAM_NAME, variant
        assert meta["model_sha256"] == model_sha256(aimc_lib.pretrained(name)), variant


#: The results behind the headline: each network with GDC, on the ideal chip and the realistic one.
HEADLINE = (*headline.IDEAL.values(), *headline.REALISTIC.values())


@pytest.mark.parametrize("result, chip_index", [(result, k) for result in HEADLINE for k in (0, 1)])
def test_headline_one_day_points_are_what_the_code_produces(result, chip_index, cifar_test):
    """Chips 0 and 1 of every headline result at 1 day, re-simulated on this CPU from what the
    file records (model, PCM parameters, periphery, stream): the chip is read at every earlier time
    of the grid first, as in the run (each read draws fresh noise), then on all 10,000 test images.

    Every draw comes from the counter-based stream, so the result must agree within 5 test images
    (0.05 points) wherever it ran: only the order of float sums differs between backends.
    """
    res = zoo.results(result)
    meta = res["meta"]
    name = meta["model"]
    per = Periphery(**meta["periphery"]) if "periphery" in meta else None
    chip = AnalogChip(aimc_lib.pretrained(name), PCMParams(**meta["pcm_params"]), seed=meta["seeds"][chip_index],
                      stream=meta["stream"])
    j = res["times_s"].index(DAY_S)
    for t in res["times_s"][:j]:  # the reads this chip had before, in order
        chip.read(t, "gdc", periphery=per) if per is not None else chip.weights_at(t, "gdc")
    acc = accuracy(chip.read(DAY_S, "gdc", periphery=per), cifar_test)
    committed = res["per_chip"][chip_index][j]
    assert abs(acc - committed) <= 0.05, (acc, committed)


def test_adabs_calibration_images_must_be_augmented(cifar_train, cifar_test):
    """Re-estimating BatchNorm statistics of the digital network: augmented calibration images
    (as in training) keep its accuracy, un-augmented ones cost points (the reason AdaBS augments)."""
    from aimc_lib.data import calibration_batch
    from aimc_lib.mapping import reestimate_bn_statistics
    model = aimc_lib.pretrained("resnet32-fp32")
    test = cifar_test.subset(2000, seed=0)
    base = accuracy(model, test)
    acc = {}
    for augmented in (True, False):
        m = copy.deepcopy(model)
        reestimate_bn_statistics(m, calibration_batch(cifar_train, 2000, seed=0, augmented=augmented))
        acc[augmented] = accuracy(m, test)
    assert abs(acc[True] - base) < 0.5, (base, acc)
    assert acc[False] < base - 1.5, (base, acc)


def test_results_note_tables_are_the_committed_numbers(capsys):
    """RESULTS.md's tables are exactly those scripts/results_tables.py prints from the committed files:
    every printed table is in the note, every table of the note is printed, and their rows agree."""
    tables = load_script("results_tables")
    tables.main()
    printed = capsys.readouterr().out
    assert printed.count("\n| ") > 30
    note = (ROOT / "RESULTS.md").read_text()
    assert tables.update_tables(note, printed) == note, "run: python scripts/results_tables.py --update RESULTS.md"
