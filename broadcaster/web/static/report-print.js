// The printed report's one button: the browser's print dialog (save as PDF is one of its printers).
document.getElementById("print")?.addEventListener("click", () => window.print());
