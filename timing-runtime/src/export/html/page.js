"use strict";
// Tables of class "sortable" sort by the column whose header is clicked (or focused and given Enter), on
// each cell's data-value when it has one (a number), on its text otherwise; a second click reverses.
function sortTable(table, column, descending) {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((other) => other.removeAttribute("aria-sort"));
  headers[column].setAttribute("aria-sort", descending ? "descending" : "ascending");
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
}

function makeSortable(table) {
  const headers = Array.from(table.tHead.rows[0].cells);
  headers.forEach((header, column) => {
    header.tabIndex = 0;
    const sort = () => {
      table.dataset.sorted = "by the reader";
      sortTable(table, column, header.getAttribute("aria-sort") !== "descending");
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

// The column a table is sorted by and which way, to sort its next version the same way.
function sortState(table) {
  const headers = Array.from(table.tHead.rows[0].cells);
  const column = headers.findIndex((header) => header.hasAttribute("aria-sort"));
  return column < 0 ? null : {
    column,
    descending: headers[column].getAttribute("aria-sort") === "descending",
    byReader: table.dataset.sorted === "by the reader",
  };
}

document.querySelectorAll("table.sortable").forEach(makeSortable);

// A live page (served by `timing_runtime::serve`) asks for itself again once a second and puts the new
// header and sections in place of the old ones.
if (document.body.dataset.live !== undefined) {
  const status = document.getElementById("live-status");
  const FLAMEGRAPH_EVERY_MS = 10000;
  let flamegraphAt = Date.now();
  let updates = 0;
  const slowKey = (row) => Array.from(row.cells).slice(0, 3).map((cell) => cell.textContent).join("/");
  const slowSeen = new Set(Array.from(document.querySelectorAll("#slow-step-table tbody tr"), slowKey));

  const replace = (next) => {
    document.querySelector("header").replaceWith(document.adoptNode(next.querySelector("header")));
    for (const section of next.querySelectorAll("section[id]")) {
      const current = document.getElementById(section.id);
      if (current === null) continue;
      // The flamegraph's frame reloads when replaced, losing its zoom: it follows less often.
      if (section.id === "call-tree") {
        if (Date.now() - flamegraphAt < FLAMEGRAPH_EVERY_MS) continue;
        flamegraphAt = Date.now();
      }
      const states = new Map();
      for (const table of current.querySelectorAll("table.sortable")) states.set(table.id, sortState(table));
      const fresh = document.adoptNode(section);
      current.replaceWith(fresh);
      for (const table of fresh.querySelectorAll("table.sortable")) {
        makeSortable(table);
        const state = states.get(table.id);
        if (state) {
          sortTable(table, state.column, state.descending);
          if (state.byReader) table.dataset.sorted = "by the reader";
        }
      }
    }
    // Slow steps that were not there before go on top, marked, unless the reader chose an order.
    const slow = document.getElementById("slow-step-table");
    if (slow !== null) {
      const body = slow.tBodies[0];
      const added = Array.from(body.rows).filter((row) => !slowSeen.has(slowKey(row)));
      for (const row of added) slowSeen.add(slowKey(row));
      added.forEach((row) => row.classList.add("new"));
      if (slow.dataset.sorted !== "by the reader") body.prepend(...added);
    }
  };

  const update = async () => {
    let text;
    try {
      const response = await fetch(location.pathname, { cache: "no-store" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      text = await response.text();
    } catch {
      document.body.dataset.live = "stopped";
      status.classList.add("stopped");
      status.textContent = `The program has stopped: no answer since ${new Date().toLocaleTimeString()}. ` +
        "These are its last numbers.";
      return;
    }
    replace(new DOMParser().parseFromString(text, "text/html"));
    updates += 1;
    document.body.dataset.updates = String(updates);
    status.textContent = `Live: updated once a second, last at ${new Date().toLocaleTimeString()}.`;
    setTimeout(update, 1000);
  };
  setTimeout(update, 1000);
}
