"Fast checks of `unified_delta_tuning.metrics` through the installed package: hand-worked values and bad input."
import math

import pytest

from unified_delta_tuning.metrics import (METRICS, UnknownMetricError, classification_f1, matthews_correlation,
                                          normalize_answer, pearson_correlation, qa_f1, rouge_l, score)


def test_metric_names_are_the_papers():
    assert list(METRICS) == ["ACC", "EM", "QA-F1", "Classification-F1", "Matthew-Correlation",
                             "Pearson-Correlation", "Rouge-L"]


def test_acc_lowercases_only_em_normalises():
    preds, golds = ["Positive", "positive.", "negative "], [("positive",), ("positive",), ("negative",)]
    assert score(preds, golds, "ACC") == pytest.approx(1 / 3)
    assert score(preds, golds, "EM") == 1.0
    assert normalize_answer("The  Cat's hat!") == "cats hat"


def test_qa_f1_partial_overlap_and_best_gold():
    # pred -> "cat sat on mat" (4), gold -> "cat on mat" (3): P=3/4, R=1, F1=6/7; second example scores 0
    assert qa_f1(["the cat sat on the mat", ""], [["dog", "A cat on a mat."], ["cat"]]) == pytest.approx(3 / 7)


def test_classification_f1_macro_over_gold_labels_only():
    golds = [["a"], ["a"], ["b"], ["b"]]
    assert classification_f1(list("abbb"), golds) == pytest.approx(11 / 15)
    assert classification_f1(list("aaaa"), golds) == pytest.approx(1 / 3)  # one-class predictions
    assert classification_f1(list("acbc"), golds) == pytest.approx(2 / 3)  # "c" is not averaged in (4/9 if it were)


def test_mcc_and_pearson():
    g = [["acceptable"], ["acceptable"], ["unacceptable"], ["unacceptable"]]
    assert matthews_correlation(["acceptable", "unacceptable", "unacceptable", "unacceptable"], g) == pytest.approx(3 ** -0.5)
    nums = [["1"], ["2"], ["3"], ["4"]]
    assert pearson_correlation(["1", "3", "2", "4"], nums) == pytest.approx(0.8)
    assert math.isnan(pearson_correlation(["1", "3", "two", "4"], nums))  # the authors' NaN on an unparsable prediction


def test_rouge_l_values_and_guard():
    # 5 and 6 distinct words, LCS 4: P=4/5, R=2/3, F=8/11 (the package adds 1e-8 to the denominator)
    assert rouge_l(["the cat sat on the mat"], [["the cat lay on a mat"]]) == pytest.approx(8 / 11, abs=1e-7)
    assert rouge_l(["", "?!", "the cat"], [["x"], ["x"], ["the cat"]]) == pytest.approx(1 / 3, abs=1e-7)


@pytest.mark.parametrize("metric", list(METRICS))
def test_bad_input_is_rejected(metric):
    with pytest.raises(ValueError, match="got 2 predictions but 1 gold"):
        score(["a", "b"], [["a"]], metric)
    with pytest.raises(ValueError, match="empty"):
        score([], [], metric)
    with pytest.raises(ValueError, match="pass a list of gold answers"):
        score(["a", "b"], ["a", "b"], metric)


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(KeyError, match="known metrics: ACC, EM"):
        score(["a"], [["a"]], "accuracy")
    with pytest.raises(ValueError):
        score(["a"], [["a"]], "F1")
    assert issubclass(UnknownMetricError, KeyError) and issubclass(UnknownMetricError, ValueError)
