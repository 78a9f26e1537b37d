# Reference values for tests/test_quantile.c, computed by R (not by hestat).
# Usage: Rscript tests/r/quantile_reference.R TABLE.csv
# where TABLE.csv is `hestat-client sample --rows 3000 --seed 7 --out TABLE.csv`
# (or ../shared/data/framingham_heart_disease_raw.csv). Prints C constants:
# R's type-7 quartiles of sysBP, BMI and glucose, and the skewness and
# kurtosis of sysBP, totChol and glucose over their present values, written
# out in base R as the moments package defines them (not bias-corrected,
# kurtosis not in excess of 3):
#   skewness = mean((x - mean(x))^3) / mean((x - mean(x))^2)^1.5
#   kurtosis = mean((x - mean(x))^4) / mean((x - mean(x))^2)^2
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], na.strings = c("NA", ""))
p <- function(name, v) cat(sprintf("%s = {%s},\n", name, paste(sprintf("%.17g", v), collapse = ", ")))
for (col in c("sysBP", "BMI", "glucose"))
    p(sprintf("quartiles %s", col), quantile(d[[col]], c(0.25, 0.5, 0.75), type = 7, na.rm = TRUE, names = FALSE))
skewness <- function(x) { x <- x[!is.na(x)]; m <- mean(x); mean((x - m)^3) / mean((x - m)^2)^1.5 }
kurtosis <- function(x) { x <- x[!is.na(x)]; m <- mean(x); mean((x - m)^4) / mean((x - m)^2)^2 }
for (col in c("sysBP", "totChol", "glucose"))
    p(sprintf("skewness, kurtosis %s", col), c(skewness(d[[col]]), kurtosis(d[[col]])))
