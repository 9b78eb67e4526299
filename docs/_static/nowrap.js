// Keep a table cell's pair of figures on one line: "0.77 / 0.33", "dtangle 0.72 / 0.62".
// Text cells, and intervals such as "0.77 (0.53-0.92)", still wrap.
document.addEventListener("DOMContentLoaded", () => {
  const figures = /^\s*([A-Za-z-]+\s)?-?\d+(\.\d+)?\s\/\s-?\d+(\.\d+)?\s*$/;
  for (const td of document.querySelectorAll(".bd-article table td")) {
    if (figures.test(td.textContent)) {
      td.style.whiteSpace = "nowrap";
    }
  }
});
