"""Summary of an A/B run: reads "OLD NEW" per line (one alternating pair each) from stdin and prints
both sides' medians and the median of the pairs' new/old ratios with their range.

    printf '%s\n' "0.101 0.097" "0.099 0.096" | python3 bench/pair_ratios.py s 3

Arguments: the unit printed after each median, and its number of decimals. Used by train_ab.sh
and eval_ab.sh.
"""
import statistics
import sys

unit, decimals = sys.argv[1], int(sys.argv[2])
pairs = [tuple(map(float, line.split())) for line in sys.stdin if line.strip()]
ratios = [new / old for old, new in pairs]
print(f"pairs: {len(pairs)}")
print(f"old median: {statistics.median(o for o, _ in pairs):,.{decimals}f} {unit}")
print(f"new median: {statistics.median(n for _, n in pairs):,.{decimals}f} {unit}")
print(f"new/old, median of the pairs: {statistics.median(ratios):.3f} "
      f"(range {min(ratios):.3f}-{max(ratios):.3f})")
