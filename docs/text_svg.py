"""Renders a text file (a terminal's output) as an SVG in a monospace font. Standard library only."""

import html
import sys

lines = open(sys.argv[1]).read().rstrip("\n").split("\n")
width = 12 + 7.3 * max(len(line) for line in lines)
height = 16 * len(lines) + 16
print(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" font-family="DejaVu Sans Mono" font-size="12">')
print(f'<rect width="100%" height="100%" fill="#1e1e1e"/>')
for index, line in enumerate(lines):
    print(f'<text x="8" y="{18 + 16 * index}" fill="#e0e0e0" xml:space="preserve">{html.escape(line)}</text>')
print("</svg>")
