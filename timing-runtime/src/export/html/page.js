"use strict";
// Tables of class "sortable" sort by the column whose header is clicked (or focused and given Enter), on
// each cell's data-value when it has one (a number), on its text otherwise; a second click reverses.
for (const table of document.querySelectorAll("table.sortable")) {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((header, column) => {
    header.tabIndex = 0;
    const sort = () => {
      const descending = header.getAttribute("aria-sort") !== "descending";
      headers.forEach((other) => other.removeAttribute("aria-sort"));
      header.setAttribute("aria-sort", descending ? "descending" : "ascending");
      const key = (row) => {
        const cell = row.cells[column];
        return cell.dataset.value === undefined ? cell.textContent : Number(cell.dataset.value);
      };
      const body = table.tBodies[0];
      const rows = Array.from(body.rows).sort((a, b) => {
        const [x, y] = [key(a), key(b)];
        const order = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
        return descending ? -order : order;
      });
      body.append(...rows);
    };
    header.addEventListener("click", sort);
    header.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        sort();
      }
    });
  });
}
