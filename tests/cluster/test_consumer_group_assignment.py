"""The consumer group protocol's server-side assignors and its reconciliation step, as pure functions."""

from __future__ import annotations

import uuid

from kstub.cluster.consumer_group.assignors import AssignmentSpec, range_, uniform
from kstub.cluster.consumer_group.model import ConsumerMember, MemberState
from kstub.cluster.consumer_group.reconcile import reconcile

T1, T2 = uuid.uuid4(), uuid.uuid4()


def counts(assignment: dict) -> dict[str, int]:
    return {m: sum(len(p) for p in a.values()) for m, a in assignment.items()}


def test_uniform_is_even_and_sticky() -> None:
    spec = AssignmentSpec(
        {"a": frozenset({"t"}), "b": frozenset({"t"})}, {"t": (T1, 6)}, {"a": {T1: frozenset(range(6))}}
    )
    out = uniform(spec)
    assert counts(out) == {"a": 3, "b": 3}
    assert out["a"][T1] <= frozenset(range(6))
    # a third member: each of the others gives one partition, keeping the rest
    spec = AssignmentSpec({m: frozenset({"t"}) for m in "abc"}, {"t": (T1, 6)}, out)
    again = uniform(spec)
    assert counts(again) == {"a": 2, "b": 2, "c": 2}
    assert again["a"][T1] <= out["a"][T1] and again["b"][T1] <= out["b"][T1]


def test_uniform_with_different_subscriptions() -> None:
    spec = AssignmentSpec({"a": frozenset({"t1"}), "b": frozenset({"t1", "t2"})}, {"t1": (T1, 2), "t2": (T2, 4)}, {})
    out = uniform(spec)
    assert T2 not in out["a"]
    assert sorted(counts(out).values()) == [2, 4] or counts(out) == {"a": 2, "b": 4}
    every = {(t, p) for a in out.values() for t, ps in a.items() for p in ps}
    assert len(every) == 6


def test_range_assigns_contiguous_ranges_in_member_order() -> None:
    spec = AssignmentSpec({"b": frozenset({"t"}), "a": frozenset({"t"})}, {"t": (T1, 5)}, {})
    assert range_(spec) == {"a": {T1: frozenset({0, 1, 2})}, "b": {T1: frozenset({3, 4})}}


def test_revocation_comes_before_the_new_epoch() -> None:
    member = ConsumerMember("a", member_epoch=1, assigned={T1: frozenset({0, 1})})
    owned = [(T1, [0, 1])]
    step = reconcile(member, 2, {T1: frozenset({0})}, {T1}, lambda t, p: 1 if p in (0, 1) else -1, owned)
    assert (step.state, step.member_epoch, step.assigned, step.pending_revocation) == (
        MemberState.UNREVOKED_PARTITIONS, 1, {T1: frozenset({0})}, {T1: frozenset({1})},
    )  # fmt: skip
    done = reconcile(step, 2, {T1: frozenset({0})}, {T1}, lambda t, p: 1 if p in (0, 1) else -1, [(T1, [0])])
    assert (done.state, done.member_epoch, done.pending_revocation) == (MemberState.STABLE, 2, {})


def test_a_partition_still_held_by_another_member_is_unreleased() -> None:
    member = ConsumerMember("b", member_epoch=1)
    step = reconcile(member, 2, {T1: frozenset({3})}, {T1}, lambda t, p: 1, [])
    assert (step.state, step.member_epoch, step.assigned) == (MemberState.UNRELEASED_PARTITIONS, 2, {})
    step = reconcile(step, 2, {T1: frozenset({3})}, {T1}, lambda t, p: -1, [])
    assert (step.state, step.assigned) == (MemberState.STABLE, {T1: frozenset({3})})
