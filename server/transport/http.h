// The one way server code includes cpp-httplib.
//
// <httplib.h> includes <resolv.h>, which defines the macro `_res` (the resolver state). Eigen uses `_res` as a
// parameter name in its matrix-product kernels, so any Eigen header parsed AFTER httplib fails to compile
// (infer/ood.h, reached through infer/classifier.h, includes Eigen). Including Eigen first makes the order of
// the includes in every server file irrelevant.
#pragma once

#include <Eigen/Core>
#include <httplib.h>
