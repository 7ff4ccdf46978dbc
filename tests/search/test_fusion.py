"""Reciprocal rank fusion on ranks whose answer is worked out by hand."""

from search.services.fusion import ranked, rrf


def test_rrf_sums_weight_over_k_plus_rank_and_says_which_legs_matched():
    fused = rrf(
        {"vector": [(1, 1), (2, 2), (3, 3)], "keyword": [(3, 1), (4, 2)]},
        weights={"vector": 1.0, "keyword": 1.0},
        k=60,
    )
    assert [f.product_id for f in fused] == [3, 1, 2, 4]
    assert fused[0].score == 1 / 63 + 1 / 61
    assert [f.matched for f in fused] == [
        ("keyword", "vector"),
        ("vector",),
        ("vector",),
        ("keyword",),
    ]


def test_weights_shift_the_balance_and_ties_break_by_id():
    legs = {"vector": [(1, 1)], "keyword": [(2, 1)]}
    assert [f.product_id for f in rrf(legs, weights={}, k=60)] == [1, 2]
    assert [f.product_id for f in rrf(legs, weights={"keyword": 2.0}, k=60)] == [2, 1]


def test_equal_evidence_shares_a_rank():
    assert ranked([(7, (2, 0.5)), (8, (1, 0.3)), (9, (1, 0.3)), (10, (1, 0.1))]) == [
        (7, 1),
        (8, 2),
        (9, 2),
        (10, 4),
    ]
