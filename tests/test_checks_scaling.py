"""The notebook-12 checks accept the reference and reject realistic wrong answers with a useful hint."""

import jax.numpy as jnp
import pytest

from pi0lite.course.checks import check_fsdp_axis, check_full_finetune_gb, check_lora_q


def good_fsdp_axis(shape, fsdp_size):
    if fsdp_size == 1 or len(shape) < 2:
        return None
    for axis in sorted(range(len(shape)), key=lambda i: -shape[i]):
        if shape[axis] % fsdp_size == 0:
            return axis
    return None


def test_fsdp_axis_accepts_reference(capsys):
    check_fsdp_axis(good_fsdp_axis)
    assert capsys.readouterr().out.startswith("✓ fsdp_axis")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda shape, f: None, "you replicate it"),  # replicating everything must fail
        (lambda shape, f: max(range(len(shape)), key=lambda i: shape[i]) if len(shape) > 1 and f > 1 else None,
         "cannot split evenly"),  # the largest axis, divisible or not
        (lambda shape, f: next((i for i, n in enumerate(shape) if n % f == 0), None) if len(shape) > 1 and f > 1
         else None, "not the largest"),  # the first divisible axis
        (lambda shape, f: good_fsdp_axis(shape, f) if len(shape) > 1 else 0, "vectors"),
    ],
)
def test_fsdp_axis_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_fsdp_axis(wrong)


def good_lora_q(x, w, a, b, alpha, rank):
    base = jnp.einsum("btd,ndh->btnh", x, w)
    return base + jnp.einsum("btnr,nrh->btnh", jnp.einsum("btd,ndr->btnr", x, a), b) * (alpha / rank)


def test_lora_q_accepts_reference(capsys):
    check_lora_q(good_lora_q)
    assert capsys.readouterr().out.startswith("✓ lora_q")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda x, w, a, b, alpha, r: good_lora_q(x, w, a, b, r, r), "left the scaling out"),
        (lambda x, w, a, b, alpha, r: good_lora_q(x, w, a, b, r * r / alpha, r), "not rank / alpha"),
        (lambda x, w, a, b, alpha, r: good_lora_q(x, w, a, b, alpha, r) - jnp.einsum("btd,ndh->btnh", x, w),
         "base einsum"),
        (lambda x, w, a, b, alpha, r: jnp.einsum("btd,ndh->btnh", x, w)
         + jnp.einsum("btr,nrh->btnh", jnp.einsum("btd,ndr->btr", x, a), b) * (alpha / r), "head axis"),
    ],
)
def test_lora_q_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_lora_q(wrong)


# A planner table shaped like pi0's (numbers for the test only): 20 bytes/param + activations.
N = 3_000_000_000
ACT = {1: 20.0, 8: 2.5}
PLANNER = {f: 20 * N / f / 1e9 + ACT[f] for f in (1, 8)}


def test_full_finetune_accepts_reference(capsys):
    check_full_finetune_gb(lambda n, f, act: 20 * n / f / 1e9 + act, PLANNER, N, ACT)
    assert capsys.readouterr().out.startswith("✓ full_finetune_gb")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda n, f, act: 12 * n / f / 1e9 + act, "bytes per parameter"),  # params + grads + 1 moment
        (lambda n, f, act: 8 * n / f / 1e9 + act, "bytes per parameter"),  # params + grads only
        (lambda n, f, act: 20 * n / 1e9 + act, "1/fsdp"),  # forgot to divide by fsdp
        (lambda n, f, act: 20 * n / f + act * 1e9, "bytes"),  # bytes, not GB
    ],
)
def test_full_finetune_rejects(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_full_finetune_gb(wrong, PLANNER, N, ACT)


# The numbers notebook 12 passes: the planner's closed form for the real pi0 (shapes only).
def _notebook_inputs():
    from pi0lite import memory

    n = memory.param_counts(memory.model_config("PI0", "full"))[0]
    act = {f: memory.estimate("PI0", "full", f)["activations"] / 1e9 for f in memory.FSDP_SIZES}
    plan = {f: c["estimate_gb"] for f, c in memory.shipped_plan()["PI0"]["full"].items()}
    return plan, n, act


def test_full_finetune_on_the_notebooks_numbers(capsys):
    plan, n, act = _notebook_inputs()
    check_full_finetune_gb(lambda n, f, a: 20 * n / f / 1e9 + a, plan, n, act)
    assert "4/4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda n, f, a: 16 * n / f / 1e9 + a, "bytes per parameter"),  # forgot the EMA copy
        (lambda n, f, a: 20 * n / f / 1e9, "add the activations"),  # forgot the activations
        (lambda n, f, a: 20 * n / f / 1e9 + 2 * a, "10 %"),  # counted the activations twice
        (lambda n, f, a: 20 * n / 1e9 + a, "1/fsdp"),  # nothing sharded
    ],
)
def test_full_finetune_rejects_on_the_notebooks_numbers(wrong, message):
    plan, n, act = _notebook_inputs()
    with pytest.raises(AssertionError, match=message):
        check_full_finetune_gb(wrong, plan, n, act)
