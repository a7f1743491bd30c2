"""Draws a window of a Chrome trace (trace.json from `optimizer --out`) as an SVG timeline: one lane per
thread, nested spans stacked, coloured by phase. Standard library only; prints the SVG."""

import json
import sys

COLOURS = {"regions": "#4e79a7", "gradient": "#f28e2b", "update": "#59a14f", "error": "#e15759", "span": "#bab0ac"}
WIDTH, ROW, LANE_GAP, LEFT = 1000, 22, 18, 70


def main(path, steps=3):
    events = [e for e in json.load(open(path))["traceEvents"] if e.get("ph") == "X"]
    step_events = [e for e in events if e["name"] == "make_step"]
    # The threads that stepped (not the one that only started the others).
    threads = sorted({e["tid"] for e in step_events})
    # The window: from the 100th step of the thread that started last, as long as `steps` typical steps.
    starts = []
    for tid in threads:
        mine = sorted((e["ts"] for e in step_events if e["tid"] == tid))
        starts.append(mine[min(100, len(mine) - 1)])
    durations = sorted(e["dur"] for e in step_events)
    start = max(starts) - 0.2 * durations[len(durations) // 2]
    end = start + steps * durations[len(durations) // 2] * 1.1
    window = [e for e in events if e["ts"] < end and e["ts"] + e["dur"] > start]
    scale = (WIDTH - LEFT - 10) / (end - start)
    lanes = []
    for tid in threads:
        spans = sorted((e for e in window if e["tid"] == tid), key=lambda e: (e["ts"], -e["dur"]))
        open_ends, placed = [], []
        for span in spans:
            while open_ends and open_ends[-1] <= span["ts"]:
                open_ends.pop()
            placed.append((len(open_ends), span))
            open_ends.append(span["ts"] + span["dur"])
        lanes.append((tid, placed, 1 + max((depth for depth, _ in placed), default=0)))
    height = sum(depth * ROW + LANE_GAP for _, _, depth in lanes) + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="DejaVu Sans Mono" font-size="11">',
           f'<rect width="{WIDTH}" height="{height}" fill="white"/>',
           f'<text x="10" y="16" font-size="13">trace.json: {steps} steps on {len(threads)} threads, {end - start:.1f} µs</text>']
    x = 420
    for phase, colour in COLOURS.items():
        out.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{colour}"/><text x="{x + 16}" y="16">{phase}</text>')
        x += 24 + 8 * len(phase)
    y = 30
    for tid, placed, depth in lanes:
        out.append(f'<text x="8" y="{y + 15}">thread {tid}</text>')
        for level, span in placed:
            x0 = LEFT + (max(span["ts"], start) - start) * scale
            x1 = LEFT + (min(span["ts"] + span["dur"], end) - start) * scale
            colour = COLOURS.get(span["cat"], "#bab0ac")
            top = y + level * ROW
            out.append(f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 0.5):.1f}" height="{ROW - 2}" fill="{colour}" stroke="white" stroke-width="0.5"/>')
            if x1 - x0 > 7 * len(span["name"]):
                out.append(f'<text x="{x0 + 3:.1f}" y="{top + 14}" fill="white">{span["name"]}</text>')
        y += depth * ROW + LANE_GAP
    out.append("</svg>")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
