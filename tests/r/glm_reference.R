# Reference values for tests/test_glm.c, computed by R (not by hestat).
# Usage: Rscript tests/r/glm_reference.R ../shared/data/framingham_heart_disease_raw.csv
# Prints C constants: coefficients, standard errors, deviance and n of
#   glm(TenYearCHD ~ age + Gender + cigsPerDay + totChol + sysBP + glucose, binomial)
#   glm(cigsPerDay ~ age + Gender + BMI, poisson)
# on the complete cases of each model (R's default na.action), iterated to
# epsilon = 1e-14 so R's own stopping rule adds nothing to the comparison.
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1], na.strings = c("NA", ""))
ctl <- glm.control(epsilon = 1e-14, maxit = 100)
show <- function(name, m) {
    co <- summary(m)$coefficients
    cat(sprintf("/* %s */\n", name))
    cat(sprintf("coef: {%s},\n", paste(sprintf("%.17g", co[, 1]), collapse = ", ")))
    cat(sprintf("se: {%s},\n", paste(sprintf("%.17g", co[, 2]), collapse = ", ")))
    cat(sprintf("p: {%s},\n", paste(sprintf("%.17g", co[, 4]), collapse = ", ")))
    cat(sprintf("deviance %.17g, n %d, iterations %d\n", m$deviance, nobs(m), m$iter))
}
show("binomial", glm(TenYearCHD ~ age + Gender + cigsPerDay + totChol + sysBP + glucose, family = binomial,
                     data = d, control = ctl))
show("poisson", glm(cigsPerDay ~ age + Gender + BMI, family = poisson, data = d, control = ctl))
cat(R.version.string, "\n")
