//! Integration tests of learnloop live in tests/*.rs beside this file.
