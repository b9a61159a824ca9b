// Constructors of Status values with the project's one error shape.
#include "nfp/status.h"

namespace nfp {

Status Error(Code code, std::string argument, std::string message) {
  Status s;
  s.code = code;
  s.argument = std::move(argument);
  s.message = std::move(message);
  return s;
}

Status NonFiniteError(const char* argument, std::size_t row, const char* what, std::size_t item) {
  return Error(Code::kNonFinite, argument,
               std::string("Expected finite values in ") + argument + " but received NaN or Inf in row " +
                   std::to_string(row) + " among the neurons of " + what + " " + std::to_string(item));
}

}  // namespace nfp
