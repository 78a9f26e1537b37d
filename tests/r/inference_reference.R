# Reference values for tests/test_inference.c, computed by R (not by hestat).
# Usage: Rscript tests/r/inference_reference.R TABLE.csv
# where TABLE.csv is `hestat-client sample --rows 3000 --seed 7 --out TABLE.csv`
# (or ../shared/data/framingham_heart_disease_raw.csv). Prints C constants.
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], na.strings = c("NA", ""))
p <- function(name, v) cat(sprintf("%s = %.17g\n", name, v))

w <- t.test(sysBP ~ TenYearCHD, data = d, var.equal = FALSE)
p("welch_t", w$statistic); p("welch_df", w$parameter); p("welch_p", w$p.value)
s <- t.test(sysBP ~ TenYearCHD, data = d, var.equal = TRUE)
p("pooled_t", s$statistic); p("pooled_df", s$parameter); p("pooled_p", s$p.value)

tab <- table(d$education, d$TenYearCHD)
print(tab)
x <- chisq.test(tab, correct = FALSE)
p("chisq", x$statistic); p("chisq_df", x$parameter); p("chisq_p", x$p.value)

ct <- cor.test(d$sysBP, d$BMI)
p("cor_r", ct$estimate); p("cor_t", ct$statistic); p("cor_df", ct$parameter); p("cor_p", ct$p.value)

m <- summary(lm(sysBP ~ age + BMI, data = d))
print(m$coefficients, digits = 17)
co <- m$coefficients
for (i in seq_len(nrow(co))) {
    p(sprintf("ols_t[%d]", i - 1), co[i, 3]); p(sprintf("ols_p[%d]", i - 1), co[i, 4])
}
p("ols_df", m$df[2])
