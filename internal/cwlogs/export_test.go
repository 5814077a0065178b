package cwlogs

// ApplyBudget is applyBudget, for the external tests to work out which
// lines a budget keeps whole.
var ApplyBudget = applyBudget
