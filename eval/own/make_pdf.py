"""Write docs/ligne_belvaux_saint_aubin_bilan_2025.pdf (French, fictional) with fpdf2.

From the repository root:  .venv/bin/python eval/own/make_pdf.py
The text below is the whole document; it was written for this project.
"""
from pathlib import Path

from fpdf import FPDF

HERE = Path(__file__).resolve().parent
OUT = HERE / "docs" / "ligne_belvaux_saint_aubin_bilan_2025.pdf"
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

TITLE = "Ligne régionale Belvaux – Saint-Aubin-des-Causses : bilan 2025"
SUBTITLE = "Observatoire régional des mobilités – rapport publié en mars 2026"

# (heading, [paragraphs]); short paragraphs so that wrapping stays predictable.
SECTIONS = [
    ("1. Présentation", [
        "La ligne Belvaux – Saint-Aubin-des-Causses relie sur 74 kilomètres la préfecture au plateau des Causses.",
        "Elle a rouvert aux voyageurs le 7 juillet 2024 après quatre ans de travaux.",
        "Ce rapport a été rédigé par l'Observatoire régional des mobilités à la demande du conseil régional.",
    ]),
    ("2. Les travaux", [
        "Le chantier a coûté 126 millions d'euros, financés par la Région, l'État et l'Union européenne.",
        "La voie a été entièrement renouvelée et la vitesse maximale est passée de 60 à 100 km/h.",
        "Trois gares ont été rénovées et une nouvelle halte a été construite à Pont-de-Rieu.",
        "Le tunnel de la Roche-Brune, long de 820 mètres, a dû être consolidé, car des infiltrations d'eau menaçaient sa voûte.",
    ]),
    ("3. Le service", [
        "Depuis la réouverture, onze allers-retours circulent chaque jour en semaine.",
        "Le trajet complet dure désormais 58 minutes, contre 1 h 35 en car.",
        "Le week-end, la fréquence est réduite à sept allers-retours par jour.",
        "Les trains sont des autorails à hydrogène, choisis parce que la ligne n'est pas électrifiée.",
    ]),
    ("4. La fréquentation", [
        "En 2025, la ligne a transporté 612 000 voyageurs, soit 30 % de plus que l'objectif fixé.",
        "La hausse la plus forte concerne les lycéens et les étudiants.",
        "Le taux de ponctualité a atteint 93,4 % sur l'année.",
        "Les retards sont surtout dus aux pannes de la station de recharge en hydrogène de Belvaux.",
    ]),
    ("5. Les tarifs", [
        "Un billet aller simple de Belvaux à Saint-Aubin coûte 9,80 euros.",
        "L'abonnement mensuel coûte 52 euros, et les jeunes de moins de 26 ans n'en paient que la moitié.",
        "Les vélos sont acceptés gratuitement à bord, dans la limite de six par train.",
    ]),
    ("6. Recommandations", [
        "L'Observatoire recommande d'ajouter un train tardif le vendredi soir, vers 22 heures.",
        "Il propose aussi de créer un parking relais de 150 places à la gare de Lunas-le-Vieux.",
        "Selon Claire Dubreuil, directrice de l'Observatoire, la ligne montre que les petites lignes peuvent retrouver leur public.",
        "Le prochain bilan sera publié en juin 2027.",
    ]),
]


def main() -> None:
    pdf = FPDF(format="A4")
    pdf.set_title(TITLE)
    pdf.set_author("Observatoire régional des mobilités (fictif)")
    pdf.add_font("DejaVu", "", str(FONT_DIR / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONT_DIR / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.multi_cell(0, 8, TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", "", 10)
    pdf.multi_cell(0, 6, SUBTITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for heading, paragraphs in SECTIONS:
        pdf.set_font("DejaVu", "B", 12)
        pdf.multi_cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("DejaVu", "", 11)
        # one paragraph per section: sentences joined by a space
        pdf.multi_cell(0, 6, " ".join(paragraphs), new_x="LMARGIN", new_y="NEXT")
        pdf.ln(3)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(OUT))
    print(OUT)


if __name__ == "__main__":
    main()
