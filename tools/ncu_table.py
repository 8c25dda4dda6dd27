"""Compact table of an `ncu --csv --page raw` file written by tools/gpu_profile.sh."""
import csv
import sys

SHORT = {
    "gpu__time_duration.sum": "us",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed": "dram%",
    "dram__bytes_read.sum": "MB",
    "lts__t_bytes.sum": "L2 MB",
    "sm__inst_issued.avg.pct_of_peak_sustained_active": "issue%",
    "sm__warps_active.avg.pct_of_peak_sustained_active": "occ%",
    "launch__registers_per_thread": "regs",
    "launch__grid_size": "grid",
    "launch__block_size": "blk",
}


def main(path):
    lines = [l for l in open(path, encoding="utf-8", errors="replace") if l.startswith('"')]
    rows = list(csv.reader(lines))
    header, units, data = rows[0], rows[1], rows[2:]
    col = {name: i for i, name in enumerate(header)}
    print("| kernel | " + " | ".join(SHORT.values()) + " | top stalls (% of warp cycles) |")
    print("|---" * (len(SHORT) + 2) + "|")
    for r in data:
        name = r[col["Kernel Name"]].split("(")[0].split("<")[0].replace("fp4llm::cuda::", "")
        name += "<" + r[col["Kernel Name"]].split("<")[1].split(">")[0] + ">" if "<" in r[col["Kernel Name"]] else ""
        vals = []
        for metric, short in SHORT.items():
            v = r[col[metric]] if metric in col else ""
            try:
                f = float(v.replace(",", ""))
                unit = units[col[metric]]
                if short == "us":
                    f = f / 1000 if unit == "nsecond" else f
                if short.endswith("MB"):
                    f = f / 1e6 if unit == "byte" else (f if unit == "Mbyte" else f / 1e3 if unit == "Kbyte" else f)
                vals.append(f"{f:.1f}" if short not in ("regs", "grid", "blk") else f"{int(f)}")
            except ValueError:
                vals.append(v)
        stalls = []
        for name_, i in col.items():
            if name_.startswith("smsp__warp_issue_stalled_"):
                try:
                    stalls.append((float(r[i]), name_[len("smsp__warp_issue_stalled_"):].split("_per_")[0]))
                except ValueError:
                    pass
        top = ", ".join(f"{s} {v:.0f}" for v, s in sorted(stalls, reverse=True)[:3])
        print(f"| {name} | " + " | ".join(vals) + f" | {top} |")


if __name__ == "__main__":
    main(sys.argv[1])
