#!/usr/bin/env python3
"""The arithmetic of a multi-round SNPE-C run with the default MAF, and its FLOP rate.

Reads the `summary.json` of a run such as

    cargo xtask run --task two_moons --method snpe --rounds 10 --simulations-per-round 1000 \\
        --observation=0,0 --samples 10000 --seed 1 --out target/xtask/snpe-two-moons
    python3 benches/two_moons_flops.py target/xtask/snpe-two-moons/summary.json

and prints, per round, the floating-point operations of its training (matrix products
only: 2 × multiply-adds, as a GEMM's rate is counted) and the rate they ran at, per second
of the round's training wall time and per core (divided by the threads the run used).

The count follows the passes the trainer makes (sbi's defaults, `SNPE_C.train`): every
epoch, a forward and backward pass over the 90 % training split and a forward pass over
the 10 % validation split, of all the rounds' simulations so far; from the second round on
the atomic loss evaluates each simulation's x with 10 atoms, so 10 columns per simulation.
Per column and MADE transform (D parameters, C data, H hidden units, B hidden layers):
forward H·D + H·C + B·H² + 2D·H multiply-adds; the backward pass the same again for the
parameter gradients, B·H² + 2D·H for the gradient through the layers and H·D for the
gradient into the previous transform (not for the first).

Compare with a large single-precision product on one core in the same sitting:
`cargo bench -p simfer-flows --bench flows -- matmul/gemm_f32/1000`.
"""

import argparse
import json


def flops_per_column(d, c, h, blocks, transforms):
    """(forward, forward + backward) FLOP of the MAF's products, per column."""
    fwd = h * d + h * c + blocks * h * h + 2 * d * h
    bwd = fwd + blocks * h * h + 2 * d * h + h * d * (transforms - 1) / transforms
    return 2.0 * transforms * fwd, 2.0 * transforms * (fwd + bwd)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", help="the run's summary.json")
    parser.add_argument("--parameters", type=int, default=2, help="D (two_moons: 2)")
    parser.add_argument("--data", type=int, default=2, help="C (two_moons: 2)")
    parser.add_argument("--hidden", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=2)
    parser.add_argument("--transforms", type=int, default=5)
    parser.add_argument("--atoms", type=int, default=10)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    args = parser.parse_args()
    with open(args.summary) as f:
        summary = json.load(f)
    threads = summary.get("threads") or 1
    fwd, step = flops_per_column(args.parameters, args.data, args.hidden, args.blocks,
                                 args.transforms)
    print(f"per column: forward {fwd / 1e3:.1f} kFLOP, forward + backward {step / 1e3:.1f} kFLOP")
    print("round  simulations  columns/sim  epochs  GFLOP  train s  GFLOP/s  per core")
    total_flop = total_s = 0.0
    pooled = 0
    for r in summary["rounds"]:
        pooled += r["simulations"]
        columns = 1 if r["round"] == 0 else args.atoms
        val = round(pooled * args.validation_fraction)
        train = pooled - val
        flop = r["epochs"] * columns * (train * step + val * fwd)
        secs = r["seconds_train"]
        total_flop += flop
        total_s += secs
        print(f"{r['round']:5d}  {pooled:11d}  {columns:11d}  {r['epochs']:6d}  {flop / 1e9:5.0f}"
              f"  {secs:7.1f}  {flop / secs / 1e9:7.1f}  {flop / secs / 1e9 / threads:8.1f}")
    print(f"all    {pooled:11d}  {'':11s}  {'':6s}  {total_flop / 1e9:5.0f}  {total_s:7.1f}"
          f"  {total_flop / total_s / 1e9:7.1f}  {total_flop / total_s / 1e9 / threads:8.1f}"
          f"   ({threads} threads)")


if __name__ == "__main__":
    main()
