from distilloop.students.tfidf import TfidfLogReg
from tests.unit.students.contract import StudentContract


class TestTfidfContract(StudentContract):
    def make_student(self, request):
        return TfidfLogReg()
