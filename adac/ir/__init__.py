"""The IR stage: the document and its checks, the table of node kinds, the graph passes every backend
shares, and the maths of elements as realised (sections, fractional delays, Hadamard structure)."""
from .document import IR_FORMAT, IR_VERSION, iter_nodes, load_ir, save_ir, validate_ir
from .kinds import KindTable, diagonal_kinds, schema_kinds

__all__ = ["IR_FORMAT", "IR_VERSION", "iter_nodes", "load_ir", "save_ir", "validate_ir", "KindTable",
           "diagonal_kinds", "schema_kinds"]
